/**
 * `p2p-registry/client`: what a service uses to find, call and announce other services through its
 * local agent (README, Calling a service). Only the platform's `fetch` at run time: Node 20+ and browsers.
 */
import { type ClientOptions, RegistryClient } from './api.ts'
import { SelfRegistration, type SelfRegistrationOptions } from './registration.ts'
import { Service, type ServiceOptions } from './service.ts'
import type { Registration } from './types.ts'

export { ConnectionError, NoInstanceError, RegistryError } from './errors.ts'
export type { ClientOptions, SelfRegistrationOptions, ServiceOptions }
export type { Strategy } from './service.ts'
export type * from './types.ts'
export { RegistryClient, SelfRegistration, Service }

/** The API client, plus `service()` and `register()` built on it. */
export interface Client {
  readonly api: RegistryClient
  /** The instances of `slug`, kept current by a watch, with load balancing (`Service`). */
  service(slug: string, options?: ServiceOptions): Service
  /** Registers this process's instance; a ttl check renews itself until `close()` (`SelfRegistration`). */
  register(registration: Registration, options?: SelfRegistrationOptions): Promise<SelfRegistration>
}

export function createClient(options: ClientOptions = {}): Client {
  const api = new RegistryClient(options)
  return {
    api,
    service: (slug, serviceOptions) => new Service(api, slug, serviceOptions),
    register: (registration, registrationOptions) =>
      SelfRegistration.register(api, registration, registrationOptions),
  }
}
