/** `bridge import <format>`. */
import { defineCommand } from "./command.js";

export const importCommand = defineCommand({
  command: "import <format>",
  describe: "convert a pretrained language model into a bridge checkpoint folder (for init: { from: DIR })",
  // async: the format list is commands/import.ts's, which loads only when `import` is the command
  builder: async (y) => {
    const { IMPORT_FORMATS } = await import("../commands/import.js");
    return y.positional("format", { choices: IMPORT_FORMATS, demandOption: true }).options({
      weights: { type: "string", demandOption: true, describe: "fastai AWD-LSTM weights, e.g. wt103-fwd/lstm_fwd.pth" },
      vocab: { type: "string", demandOption: true, describe: "its vocabulary, a pickled list of strings (itos_wt103.pkl)" },
      out: { type: "string", demandOption: true, describe: "folder for model.pt and import.json" },
      backwards: { type: "boolean", default: false, describe: "a backward LM (fastai's wt103-bwd)" },
    });
  },
  handler: async (a) => {
    const { importCommand } = await import("../commands/import.js");
    await importCommand({ format: a.format, weights: a.weights, vocab: a.vocab, out: a.out, backwards: a.backwards });
  },
});
