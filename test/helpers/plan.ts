import { Plan, PlanInput, collectPlan } from "../../stacks/plan";

/**
 * Plans `input` with a fresh SDK instance (its runtime state is per module instance). Async
 * isolation: the program is required after the mocks are set, still in the isolated registry.
 */
export async function planInIsolation(input: PlanInput, keepSecrets = false): Promise<Plan> {
  let result!: Plan;
  await jest.isolateModulesAsync(async () => {
    /* eslint-disable @typescript-eslint/no-require-imports */
    result = await collectPlan(
      {
        pulumi: require("@pulumi/pulumi"),
        mocks: require("@pulumi/pulumi/runtime/mocks"),
        loadProgram: () => require("../../stacks/index"),
      },
      input,
      { keepSecrets },
    );
    /* eslint-enable @typescript-eslint/no-require-imports */
  });
  return result;
}
