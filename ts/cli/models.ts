/** `bridge models`. */
import { defineCommand } from "./command.js";
import { jsonOption } from "./options.js";

export const modelsCommand = defineCommand({
  command: "models",
  describe: "list the pretrained-model cache (init: { from: pretrained:NAME } builds an entry on first use)",
  builder: (y) => y.options({ ...jsonOption }),
  handler: async (a) => {
    const { modelsCommand } = await import("../commands/models.js");
    return modelsCommand({ json: a.json });
  },
});
