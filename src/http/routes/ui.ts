import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { NotFoundError } from '../errors.ts'
import type { RegistryApp } from '../types.ts'

/** The dashboard's files, as `npm run build` makes them (scripts/bundle.ts): next to the bundle, or in dist/. */
const CANDIDATE_DIRS = [new URL('./ui/', import.meta.url), new URL('../../../dist/ui/', import.meta.url)]

const FILES = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
} as const
type UiFile = keyof typeof FILES

interface Asset {
  plain: Buffer
  gzip: Buffer | undefined
}

/** The page talks to this agent only; nothing inline, nothing from elsewhere. */
const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"

/**
 * `GET /ui/`: the dashboard (src/ui), served from memory, gzipped to clients that accept it. Open like
 * `/healthz` (a static page; what it shows comes from the read routes, which keep their own rules).
 */
export function uiRoutes(
  app: RegistryApp,
  dir = CANDIDATE_DIRS.find((d) => existsSync(new URL('index.html', d))),
): void {
  const assets = new Map<string, Asset>()
  if (dir !== undefined) {
    for (const name of Object.keys(FILES)) {
      const path = fileURLToPath(new URL(name, dir))
      assets.set(name, {
        plain: readFileSync(path),
        gzip: existsSync(`${path}.gz`) ? readFileSync(`${path}.gz`) : undefined,
      })
    }
  }
  const config = { open: true }
  const schema = { hide: true }

  // The page's files are relative to /ui/: `/ui` is sent there.
  app.get('/ui', { config, schema }, (request, reply) =>
    request.url.split('?')[0]!.endsWith('/') ? serve('', request, reply) : reply.redirect('/ui/', 301),
  )
  const serve = (file: string, request: FastifyRequest, reply: FastifyReply) => {
    const name = (file || 'index.html') as UiFile
    const asset = assets.get(name)
    if (asset === undefined) {
      throw new NotFoundError(
        'dashboard file',
        dir === undefined ? `${name} (the dashboard is not built: npm run build)` : name,
      )
    }
    const gzip = asset.gzip !== undefined && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))
    reply
      .header('content-type', FILES[name])
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('vary', 'accept-encoding')
    if (gzip) reply.header('content-encoding', 'gzip')
    return reply.send(gzip ? asset.gzip : asset.plain)
  }
  // Also matches `/ui/` itself, with an empty file.
  app.get<{ Params: { file: string } }>('/ui/:file', { config, schema }, (request, reply) =>
    serve(request.params.file, request, reply),
  )
}
