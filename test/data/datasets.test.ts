/** Where a split is looked for, and why it cannot be read: the message names the real cause. */
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { missingSplitMessage, parseSplitRef } from "../../ts/data/datasets.js";
import { tempDir, writeText } from "./helpers.js";

test("a missing split says why: not found, a data dir that is a file, a symbolic link loop", () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.match(missingSplitMessage(parseSplitRef("snli:dev", dir)), /^snli:dev: not found at /);
    const file = writeText(dir, "data.txt", "not a folder\n");
    assert.match(
      missingSplitMessage(parseSplitRef("snli:dev", file)),
      `snli:dev: not readable (${file} is a file, not a folder) at ${file}/snli_1.0/snli_1.0_dev.jsonl`,
    );
    mkdirSync(join(dir, "loop"));
    symlinkSync(join(dir, "loop", "snli_1.0"), join(dir, "loop", "snli_1.0"));
    assert.match(missingSplitMessage(parseSplitRef("snli:dev", join(dir, "loop"))), /^snli:dev: a symbolic link loop at /);
  } finally {
    cleanup();
  }
});

test.run();
