// Reads a JSON array of strings on stdin; prints, for each, what npm `twitter-text` says:
// parseTweet (weighted length, validity) and the URLs extractUrlsWithIndices finds, with
// indices in code points (as chirpbase counts them), not UTF-16 units. (twitter-text's own
// modifyIndicesFromUTF16ToUnicode keeps an entity's UTF-16 length, so its end index is off by
// one for each astral character inside the entity: the conversion here is done on both ends.)
"use strict";
const twitterText = require("twitter-text");

const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => {
  const texts = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const results = texts.map((text) => {
    const parsed = twitterText.parseTweet(text);
    const urls = twitterText.extractUrlsWithIndices(text);
    const codePoints = (utf16Index) => Array.from(text.slice(0, utf16Index)).length;
    return {
      weightedLength: parsed.weightedLength,
      valid: parsed.valid,
      urls: urls.map((entity) => ({
        url: entity.url,
        indices: entity.indices.map(codePoints),
      })),
    };
  });
  process.stdout.write(JSON.stringify(results));
});
