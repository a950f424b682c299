/**
 * Types of the parts of `@1backend/client` the tests use. The package's own declarations re-export
 * with extensionless relative paths, which TypeScript cannot follow in an ES module package under
 * NodeNext resolution; tsconfig's `paths` points here instead. Runtime is the published package.
 */
export interface ConfigurationParameters {
  basePath?: string
  apiKey?: string | ((name: string) => string)
}
export declare class Configuration {
  constructor(parameters?: ConfigurationParameters)
}
export interface RegistrySvcInstance {
  id: string
  url: string
  slug?: string
  deploymentId?: string
  nodeUrl?: string
  host?: string
  ip?: string
  port?: number
  path?: string
  scheme?: string
  status: string
  tags?: string[]
  details?: string
  lastHeartbeat?: string
}
export interface RegistrySvcRegisterInstanceRequest {
  url: string
  id?: string
  deploymentId?: string
  host?: string
  ip?: string
  path?: string
  port?: number
  scheme?: string
}
export declare class RegistrySvcApi {
  constructor(configuration?: Configuration)
  registerInstance(parameters: { body: RegistrySvcRegisterInstanceRequest }): Promise<object>
  listInstances(parameters?: {
    scheme?: string
    ip?: string
    deploymentId?: string
    host?: string
    id?: string
    slug?: string
  }): Promise<{ instances?: RegistrySvcInstance[] }>
  removeInstance(parameters: { id: string }): Promise<void>
}
