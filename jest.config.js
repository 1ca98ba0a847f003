/** Jest runs the TypeScript sources directly through SWC (no type check; `npm run build` type-checks). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j|mj)s$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  // hyparquet ships ESM only; SWC turns it into CommonJS for Jest.
  transformIgnorePatterns: ['/node_modules/(?!(hyparquet)/)'],
  testTimeout: 60000,
  maxWorkers: 2,
};
