/**
 * The dashboard (`GET /ui/`, README "Dashboard"): the cluster as this agent's replica holds it, kept
 * live by the watch streams. Preact, bundled by esbuild into dist/ui (scripts/bundle.ts).
 *
 * It never asks for every instance: the services view follows the per-slug summary, and a slug's
 * instances are watched only while that slug is open. Long lists are paged.
 */
import { type ComponentChildren, render } from 'preact'
import { useEffect, useMemo, useState } from 'preact/hooks'
import type { AgentHealth, Definition, Instance, NodeRecord, ServiceSummary } from '../client/types.ts'
import { type StreamState, useNow, usePoll, useWatch } from './streams.ts'

const PAGE = 50
const STATUSES = ['Healthy', 'Degraded', 'Unknown', 'Unreachable', 'Error'] as const
type View =
  | { name: 'nodes' }
  | { name: 'services' }
  | { name: 'service'; slug: string }
  | { name: 'definitions' }

function viewOf(hash: string): View {
  const [name, ...rest] = hash.replace(/^#\/?/, '').split('/')
  if (name === 'services' && rest.length > 0)
    return { name: 'service', slug: decodeURIComponent(rest.join('/')) }
  if (name === 'services' || name === 'definitions') return { name }
  return { name: 'nodes' }
}

function App() {
  const [view, setView] = useState<View>(viewOf(location.hash))
  useEffect(() => {
    const onHash = () => setView(viewOf(location.hash))
    addEventListener('hashchange', onHash)
    return () => removeEventListener('hashchange', onHash)
  }, [])
  const [token, setToken] = useState(sessionStorage.getItem('p2p-registry-token') ?? '')
  const nodes = useWatch('/registry-svc/nodes/watch', 'nodes', (a) => a.nodes as NodeRecord[])
  const services = useWatch('/registry-svc/services/watch', 'services', (a) => a.services as ServiceSummary[])
  const definitions = useWatch(
    '/registry-svc/definitions/watch',
    'definitions',
    (a) => a.definitions as Definition[],
  )
  const health = usePoll(() => fetch('/healthz').then((r) => r.json() as Promise<AgentHealth>), 5000)
  const lost = [nodes.state, services.state, definitions.state].includes('lost')
  return (
    <>
      <header>
        <h1>p2p-registry</h1>
        <p class="agent">
          agent <strong>{health?.nodeId ?? '…'}</strong>
          {services.data && ` · ${services.data.reduce((n, s) => n + s.instances, 0)} instances`}
          {health && ` · ${health.peers ?? 0} peers`}
        </p>
        <nav aria-label="Views">
          {(['nodes', 'services', 'definitions'] as const).map((name) => (
            <a
              href={`#${name}`}
              aria-current={
                view.name === name || (name === 'services' && view.name === 'service') ? 'page' : undefined
              }
            >
              {name[0]!.toUpperCase() + name.slice(1)}
            </a>
          ))}
        </nav>
        <TokenBox
          token={token}
          onToken={(t) => {
            setToken(t)
            sessionStorage.setItem('p2p-registry-token', t)
          }}
        />
      </header>
      {lost && (
        <div class="banner lost" role="alert">
          Connection to the agent lost: reconnecting… The lists show what was last received.
        </div>
      )}
      {health?.selfPreservation && (
        <output class="banner preserving">
          Self-preservation is on: this agent sees {Math.round((health.unreachableRatio ?? 0) * 100)}% of
          nodes unreachable and deletes nothing of other nodes until that falls.
        </output>
      )}
      <main>
        {view.name === 'nodes' && <Nodes nodes={nodes.data} state={nodes.state} self={health?.nodeId} />}
        {view.name === 'services' && <Services services={services.data} state={services.state} />}
        {view.name === 'service' && (
          <ServiceInstances slug={view.slug} nodes={nodes.data ?? []} token={token} />
        )}
        {view.name === 'definitions' && (
          <Definitions definitions={definitions.data} state={definitions.state} token={token} />
        )}
      </main>
    </>
  )
}

function TokenBox({ token, onToken }: { token: string; onToken: (token: string) => void }) {
  const [draft, setDraft] = useState(token)
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault()
        onToken(draft.trim())
      }}
    >
      <label for="token">API token</label>
      <input
        id="token"
        type="password"
        autocomplete="off"
        value={draft}
        placeholder="read-only without one"
        onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
      />
      <button type="submit">{token ? 'Change' : 'Use'}</button>
      {token && <span class="muted">writes enabled</span>}
    </form>
  )
}

function Loading({ state }: { state: StreamState }) {
  return <p class="muted">{state === 'lost' ? 'Cannot reach the agent; retrying…' : 'Loading…'}</p>
}

function ago(iso: string | undefined, now: number): string {
  if (!iso) return '—'
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  return s < 90 ? `${s}s ago` : s < 5400 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`
}

function Bar({ label, percent }: { label: string; percent: number | undefined }) {
  if (percent === undefined) return <span class="muted">—</span>
  const p = Math.max(0, Math.min(100, percent))
  return (
    <span class="bar">
      <meter min={0} max={100} low={70} high={90} optimum={0} value={p} aria-label={label} />
      <em>{Math.round(p)}%</em>
    </span>
  )
}

function Nodes({
  nodes,
  state,
  self,
}: {
  nodes: NodeRecord[] | undefined
  state: StreamState
  self: string | undefined
}) {
  const now = useNow()
  if (nodes === undefined) return <Loading state={state} />
  return (
    <section aria-labelledby="nodes-title">
      <h2 id="nodes-title">
        Nodes <span class="count">{nodes.length}</span>
      </h2>
      <Table
        head={
          <>
            <th>Node</th>
            <th>URL</th>
            <th>Zone / region</th>
            <th>Liveness</th>
            <th>CPU</th>
            <th>Memory</th>
            <th>Disk</th>
            <th>GPUs</th>
            <th>Replica</th>
          </>
        }
      >
        {nodes.map((n) => (
          <tr key={n.id} data-node={n.id}>
            <th scope="row">
              {n.id}
              {n.id === self && <span class="muted"> (this agent)</span>}
            </th>
            <td>
              <code>{n.url}</code>
            </td>
            <td>{[n.availabilityZone, n.region].filter(Boolean).join(' / ') || '—'}</td>
            <td>
              <span class={`pill ${n.liveness ?? 'unknown'}`}>{n.liveness ?? 'unknown'}</span>{' '}
              <span class="muted">{ago(n.lastHeartbeat, now)}</span>
            </td>
            <td>
              <Bar label={`CPU of ${n.id}`} percent={n.usage?.cpu.percent} />
            </td>
            <td>
              <Bar label={`Memory of ${n.id}`} percent={n.usage?.memory.percent} />
            </td>
            <td>
              <Bar label={`Disk of ${n.id}`} percent={n.usage?.disk.percent} />
            </td>
            <td>{n.gpus?.length ?? 0}</td>
            <td>
              {n.inSync === undefined ? (
                <span class="muted">—</span>
              ) : n.inSync ? (
                'in sync'
              ) : (
                <strong>differs</strong>
              )}
            </td>
          </tr>
        ))}
      </Table>
    </section>
  )
}

/** A table that scrolls sideways on a narrow screen. */
function Table({ head, children }: { head: ComponentChildren; children: ComponentChildren }) {
  return (
    <div class="scroll">
      <table>
        <thead>
          <tr>{head}</tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  )
}

function Pager({ page, pages, onPage }: { page: number; pages: number; onPage: (page: number) => void }) {
  if (pages <= 1) return null
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={page === 0} onClick={() => onPage(page - 1)}>
        Previous
      </button>
      <span>
        page {page + 1} of {pages}
      </span>
      <button type="button" disabled={page >= pages - 1} onClick={() => onPage(page + 1)}>
        Next
      </button>
    </nav>
  )
}

function Services({ services, state }: { services: ServiceSummary[] | undefined; state: StreamState }) {
  const [filter, setFilter] = useState('')
  const [page, setPage] = useState(0)
  const matching = useMemo(
    () => (services ?? []).filter((s) => s.slug.toLowerCase().includes(filter.trim().toLowerCase())),
    [services, filter],
  )
  if (services === undefined) return <Loading state={state} />
  const pages = Math.ceil(matching.length / PAGE)
  const shown = matching.slice(page * PAGE, (page + 1) * PAGE)
  return (
    <section aria-labelledby="services-title">
      <h2 id="services-title">
        Services <span class="count">{services.length}</span>
      </h2>
      <label for="service-filter">Filter by slug</label>{' '}
      <input
        id="service-filter"
        type="search"
        value={filter}
        onInput={(e) => {
          setFilter((e.target as HTMLInputElement).value)
          setPage(0)
        }}
      />
      <Table
        head={
          <>
            <th>Slug</th>
            <th>Instances</th>
            {STATUSES.map((s) => (
              <th>{s}</th>
            ))}
          </>
        }
      >
        {shown.map((s) => (
          <tr key={s.slug} data-slug={s.slug}>
            <th scope="row">
              <a href={`#services/${encodeURIComponent(s.slug)}`}>{s.slug || '(no slug)'}</a>
            </th>
            <td>{s.instances}</td>
            {STATUSES.map((status) => (
              <td class={s.statuses[status] ? status.toLowerCase() : 'muted'}>{s.statuses[status] ?? 0}</td>
            ))}
          </tr>
        ))}
      </Table>
      <Pager page={page} pages={pages} onPage={setPage} />
    </section>
  )
}

/** Sends a write with the token; resolves with the API's error text, or undefined when it took. */
async function write(
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<string | undefined> {
  const response = await fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  if (response.ok) return undefined
  const text = await response.text()
  try {
    return (JSON.parse(text) as { error?: string }).error ?? text
  } catch {
    return text || `HTTP ${response.status}`
  }
}

function ServiceInstances({ slug, nodes, token }: { slug: string; nodes: NodeRecord[]; token: string }) {
  const { data: instances, state } = useWatch(
    `/registry-svc/instances/watch?slug=${encodeURIComponent(slug)}`,
    'instances',
    (a) => a.instances as Instance[],
  )
  const [page, setPage] = useState(0)
  const [error, setError] = useState<string>()
  const [url, setUrl] = useState('')
  const now = useNow()
  const nodeOf = (nodeUrl: string | undefined) => nodes.find((n) => n.url === nodeUrl)?.id ?? nodeUrl ?? '—'
  if (instances === undefined) return <Loading state={state} />
  const pages = Math.ceil(instances.length / PAGE)
  return (
    <section aria-labelledby="instances-title">
      <p>
        <a href="#services">← Services</a>
      </p>
      <h2 id="instances-title">
        Instances of <code>{slug}</code> <span class="count">{instances.length}</span>
      </h2>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {token && (
        <form
          class="inline"
          onSubmit={async (e) => {
            e.preventDefault()
            const refused = await write(token, 'PUT', '/registry-svc/instance', { slug, url })
            setError(refused)
            if (!refused) setUrl('')
          }}
        >
          <label for="register-url">Register an instance at</label>
          <input
            id="register-url"
            required
            placeholder="http://127.0.0.1:8080"
            value={url}
            onInput={(e) => setUrl((e.target as HTMLInputElement).value)}
          />
          <button type="submit">Register</button>
        </form>
      )}
      <Table
        head={
          <>
            <th>URL</th>
            <th>Status</th>
            <th>Check</th>
            <th>Tags</th>
            <th>Owner</th>
            <th>Last check</th>
            {token && (
              <th>
                <span class="sr-only">Actions</span>
              </th>
            )}
          </>
        }
      >
        {instances.slice(page * PAGE, (page + 1) * PAGE).map((i) => (
          <tr key={i.id} data-instance={i.id}>
            <th scope="row">
              <code>{i.url}</code>
            </th>
            <td>
              <span class={`pill ${i.status.toLowerCase()}`}>{i.status}</span>
              {i.details && <span class="muted"> {i.details}</span>}
            </td>
            <td>{i.check?.type ?? 'default'}</td>
            <td>{i.tags?.join(', ') || '—'}</td>
            <td>{nodeOf(i.nodeUrl)}</td>
            <td>{ago(i.lastHeartbeat, now)}</td>
            {token && (
              <td>
                <button
                  type="button"
                  onClick={async () =>
                    setError(
                      await write(token, 'DELETE', `/registry-svc/instance/${encodeURIComponent(i.id)}`),
                    )
                  }
                >
                  Deregister
                </button>
              </td>
            )}
          </tr>
        ))}
      </Table>
      <Pager page={page} pages={pages} onPage={setPage} />
    </section>
  )
}

function Definitions({
  definitions,
  state,
  token,
}: {
  definitions: Definition[] | undefined
  state: StreamState
  token: string
}) {
  const [draft, setDraft] = useState('{"id": "web", "image": {"name": "nginx:1.27", "port": 80}}')
  const [error, setError] = useState<string>()
  if (definitions === undefined) return <Loading state={state} />
  return (
    <section aria-labelledby="definitions-title">
      <h2 id="definitions-title">
        Definitions <span class="count">{definitions.length}</span>
      </h2>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {token && (
        <form
          onSubmit={async (e) => {
            e.preventDefault()
            let definition: unknown
            try {
              definition = JSON.parse(draft)
            } catch (err) {
              setError(`Not JSON: ${(err as Error).message}`)
              return
            }
            setError(await write(token, 'PUT', '/registry-svc/definition', { definition }))
          }}
        >
          <label for="definition">Save a definition (JSON)</label>
          <textarea
            id="definition"
            rows={3}
            value={draft}
            onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)}
          />
          <button type="submit">Save</button>
        </form>
      )}
      <Table
        head={
          <>
            <th>Id</th>
            <th>Image or repository</th>
            <th>Ports</th>
            <th>API specs</th>
            <th>Clients</th>
          </>
        }
      >
        {definitions.map((d) => {
          const image = d.image as { name?: string } | undefined
          const repository = d.repository as { url?: string } | undefined
          const ports = (d.ports as Array<{ internal?: number; host?: number }> | undefined) ?? []
          return (
            <tr key={d.id} data-definition={d.id}>
              <th scope="row">{d.id}</th>
              <td>
                <code>{image?.name ?? repository?.url ?? '—'}</code>
              </td>
              <td>{ports.map((p) => `${p.host ?? '?'}→${p.internal ?? '?'}`).join(', ') || '—'}</td>
              <td>{(d.apiSpecs as unknown[] | undefined)?.length ?? 0}</td>
              <td>{(d.clients as unknown[] | undefined)?.length ?? 0}</td>
            </tr>
          )
        })}
      </Table>
    </section>
  )
}

const root = document.getElementById('app')!
root.textContent = '' // the page's "Loading…" placeholder
render(<App />, root)
