/** `bridge doctor`. */
import { defineCommand } from "./command.js";

export const doctorCommand = defineCommand({
  command: "doctor",
  describe: "check the Python environment and do a round trip with the backend",
  builder: (y) => y.options({ "skip-pythonia": { type: "boolean", default: false, describe: "skip the pythonia inspection" } }),
  handler: async (a) => {
    const { doctor } = await import("../commands/doctor.js");
    return doctor({ skipPythonia: a.skipPythonia });
  },
});
