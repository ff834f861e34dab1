/** Two projects: `unit` (npm test: seconds, no root) and `e2e` (npm run test:e2e: the test VM). */
const tsJest = ["ts-jest", { tsconfig: "tsconfig.json" }];
module.exports = {
  // the failed tests again, short, at the very end (test/failure-summary.js)
  reporters: ["default", "<rootDir>/test/failure-summary.js"],
  projects: [
    {
      displayName: "unit",
      testEnvironment: "node",
      // the system tools the tests run: installed as root, else one clear failure up front
      globalSetup: "<rootDir>/test/tools.ts",
      // and a temporary directory of its own, removed at the end (HD_KEEP_TMP=1 keeps it)
      globalTeardown: "<rootDir>/test/tmp-teardown.ts",
      transform: { "^.+\\.ts$": tsJest },
      testMatch: [
        "<rootDir>/test/unit/**/*.test.ts",
        "<rootDir>/{components,stacks,cli}/**/*.test.ts",
      ],
    },
    {
      displayName: "e2e",
      testEnvironment: "node",
      transform: { "^.+\\.ts$": tsJest },
      testMatch: ["<rootDir>/test/e2e/**/*.test.ts"],
    },
  ],
};
