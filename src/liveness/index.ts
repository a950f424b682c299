/**
 * Liveness: this node's heartbeat (beats + its node record) and the failure detector that turns
 * other nodes' silence into `suspect` / `unreachable`. See heartbeat.ts, failure-detector.ts and
 * liveness-state.ts (thresholds and detection time). Plus health probes of the instances this node
 * owns (instance-probe.ts, tcp-probe.ts).
 */

export { InitError } from '../support/init-error.ts'
export {
  type Beat,
  DIGEST_PREFIX_CHARS,
  decodeBeat,
  digestPrefix,
  encodeBeat,
} from './beat.ts'
export {
  BEAT_OUTCOMES,
  type BeatOutcome,
  type DigestMismatch,
  type FailureDetectorEvents,
  type LivenessChange,
  type LivenessEntry,
  MAX_MISMATCH_BEATS,
  MAX_UNRECORDED_NODES,
} from './detector-types.ts'
export { BeatError, type BeatErrorReason } from './errors.ts'
export {
  type BeatSource,
  FailureDetector,
  type FailureDetectorComponents,
  type FailureDetectorInit,
  failureDetector,
} from './failure-detector.ts'
export {
  type BeatSink,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_RECORD_REFRESH_MS,
  Heartbeat,
  type HeartbeatComponents,
  type HeartbeatEvents,
  type HeartbeatInit,
  type HeartbeatLibp2p,
  heartbeat,
  RECORD_REFRESH_SPACING_MS,
  type RecordReason,
  recordRefreshFor,
} from './heartbeat.ts'
export {
  DEFAULT_CHECK_TYPE,
  DEFAULT_DEGRADED_AFTER_MS,
  DEFAULT_DEREGISTER_AFTER_MS,
  DEFAULT_PROBE_CONCURRENCY,
  DEFAULT_PROBE_INTERVAL_MS,
  DEFAULT_PROBE_TIMEOUT_MS,
  DEFAULT_STATUS_REFRESH_MS,
  DEFAULT_TTL_MS,
  type InstanceProbeResult,
  InstanceProber,
  type InstanceProberComponents,
  type InstanceProberEvents,
  type InstanceProberInit,
  type InstanceProberStats,
  type InstanceStatusChange,
  instanceProber,
  PROBE_STATUSES,
  type ProbeStatus,
  type RenewOutcome,
  type SettleOutcome,
} from './instance-probe.ts'
export { Liveness } from './liveness.ts'
export {
  classify,
  type LivenessStatus,
  type LivenessThresholds,
  type LivenessThresholdsInit,
  resolveThresholds,
} from './liveness-state.ts'
export {
  buildNodeRecord,
  gpuId,
  identityFingerprint,
  type NodeIdentity,
  type NodeSelf,
} from './node-record.ts'
export { type GpuInfo, parseNvidiaSmi } from './nvidia-smi.ts'
export { ProbeNetworks } from './probe-networks.ts'
export {
  DEFAULT_NODE_REAP_AFTER_MS,
  DEFAULT_SELF_PRESERVATION_RATIO,
  Reaper,
  type ReaperComponents,
  type ReaperEvents,
  type ReaperInit,
} from './reaper.ts'
export {
  peerIdOf,
  SwimDetector,
  type SwimDetectorComponents,
  type SwimDetectorInit,
  type SwimFrameOutcome,
  type SwimTransport,
  speaksSwim,
  swimTimings,
} from './swim-detector.ts'
export { SwimTransports, type SwimTransportsComponents, type SwimTransportsInit } from './swim-transport.ts'
export {
  DEFAULT_PROBE_PORTS,
  type ProbeTarget,
  probeTargetOf,
  type TcpProbe,
  type TcpProbeOptions,
  type TcpProbeResult,
  targetKey,
  tcpProbe,
} from './tcp-probe.ts'
export {
  type NodeUsage,
  ResourceSampler,
  type ResourceSamplerInit,
  type ResourceSource,
  type ResourceUsage,
} from './usage.ts'
