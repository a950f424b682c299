import { configDefaults, defineConfig } from 'vitest/config'

/**
 * Two groups, run one after the other: the agents' tests, then the container tier (test/containers),
 * which builds an image and runs the compose cluster. Run last and alone, its build's CPU load does not
 * reach the timing-sensitive cluster tests.
 */
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'agents',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/containers/**'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'containers', include: ['test/containers/**/*.test.ts'], sequence: { groupOrder: 1 } },
      },
    ],
  },
})
