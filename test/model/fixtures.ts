import type { Definition } from '../../src/model/index.ts'

/** The two short-form examples of 1Backend's docs, as written there. */
export const SEED_YAML = `id: test-a
image:
  name: hashicorp/http-echo
  port: 8080
hostPort: 8887
---
id: test-b
repository:
  url: https://github.com/1backend/1backend.git
  containerFile: server/docker/Dockerfile
hostPort: 9998
`

/** The same two examples as JSON objects (short form). */
export const SEED_A_JSON = {
  id: 'test-a',
  image: { name: 'hashicorp/http-echo', port: 8080 },
  hostPort: 8887,
}
export const SEED_B_JSON = {
  id: 'test-b',
  repository: { url: 'https://github.com/1backend/1backend.git', containerFile: 'server/docker/Dockerfile' },
  hostPort: 9998,
}

/** Their normal form. */
export const TEST_A: Definition = {
  id: 'test-a',
  image: { name: 'hashicorp/http-echo', internalPorts: [8080] },
  ports: [{ internal: 8080, host: 8887 }],
}
export const TEST_B: Definition = {
  id: 'test-b',
  repository: {
    url: 'https://github.com/1backend/1backend.git',
    containerFile: 'server/docker/Dockerfile',
    internalPorts: [9998],
  },
  ports: [{ internal: 9998, host: 9998 }],
}
