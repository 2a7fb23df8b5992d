/**
 * The text the on-the-fly head scores average over. kvpress draws 50 chapters of BookSum (kmfoda/booksum, train split,
 * pandas `sample(50, random_state=42)`); razorkv reaches no dataset hub and a policy may not read repository data, so
 * the package writes its own: plain narrative English from a fixed grammar and word lists, drawn with a seed. What
 * the score needs of the text is that it is ordinary prose the model reads as language (the mean query and key of a
 * head over it), not what it says; the deviation is stated in README.md.
 */
import { mulberry32 } from "@razorkv/core";

const PEOPLE = [
  "the miller", "the old sailor", "her brother", "the schoolteacher", "a young clerk", "the baker's daughter", "the doctor",
  "his uncle", "the innkeeper", "a travelling merchant", "the widow", "the blacksmith", "the captain", "my grandmother",
];
const PLACES = [
  "the harbour", "the village square", "the orchard", "the old mill", "the station", "the market", "the church",
  "the river bank", "the library", "the farmhouse", "the narrow lane", "the hill above the town",
];
const THINGS = [
  "a letter", "the lamp", "a basket of apples", "the ledger", "an umbrella", "the key", "a loaf of bread", "the map",
  "a small wooden box", "the newspaper", "a bundle of firewood", "the violin",
];
const TIMES = [
  "In the morning", "Late that evening", "On the following day", "Before the rain began", "After supper", "At noon",
  "Some weeks later", "When the bells rang", "During the long winter", "Early in the spring",
];
const VERBS = ["carried", "found", "opened", "forgot", "mended", "hid", "sold", "painted", "returned", "borrowed"];
const FEELINGS = ["quiet", "tired", "cheerful", "worried", "patient", "restless", "proud", "uneasy", "hopeful"];
const SAYINGS = [
  "nothing good ever came from hurrying", "the weather would turn before long", "the road was longer than it looked",
  "everyone in town already knew", "the harvest had been better than expected", "the bridge needed repairs",
];

const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)];
const capital = (s: string) => s[0].toUpperCase() + s.slice(1);

/** One sentence of the grammar. */
function sentence(rand: () => number): string {
  switch (Math.floor(rand() * 6)) {
    case 0:
      return `${pick(rand, TIMES)}, ${pick(rand, PEOPLE)} ${pick(rand, VERBS)} ${pick(rand, THINGS)} near ${pick(rand, PLACES)}.`;
    case 1:
      return `${capital(pick(rand, PEOPLE))} was ${pick(rand, FEELINGS)}, because ${pick(rand, SAYINGS)}.`;
    case 2:
      return `Nobody at ${pick(rand, PLACES)} remembered who had ${pick(rand, VERBS)} ${pick(rand, THINGS)}.`;
    case 3:
      return `"I think ${pick(rand, SAYINGS)}," said ${pick(rand, PEOPLE)}, and walked towards ${pick(rand, PLACES)}.`;
    case 4:
      return `${pick(rand, TIMES)}, ${pick(rand, PEOPLE)} and ${pick(rand, PEOPLE)} met at ${pick(rand, PLACES)} and spoke of ${pick(rand, THINGS)}.`;
    default:
      return `It seemed to ${pick(rand, PEOPLE)} that ${pick(rand, SAYINGS)}, so ${pick(rand, THINGS)} stayed where it was.`;
  }
}

/**
 * At least `minChars` characters of prose, drawn from `seed` (the same seed gives the same text); paragraphs of five
 * sentences separated by blank lines.
 */
export function prose(seed: number, minChars: number): string {
  const rand = mulberry32(seed);
  const paragraphs: string[] = [];
  let length = 0;
  while (length < minChars) {
    const p = Array.from({ length: 5 }, () => sentence(rand)).join(" ");
    paragraphs.push(p);
    length += p.length + 2;
  }
  return paragraphs.join("\n\n");
}
