import { mulberry32 } from "@razorkv/core";

/**
 * A deterministic generator of plain, grammatical English essays: the haystack the project ships
 * (datasets/haystack/generated-essays.txt, written by datasets/haystack/generate.mjs with PROSE_SEED and
 * PROSE_CHARS). Every word list and sentence pattern below was written for this project, so the output is ours
 * to redistribute (datasets/README.md).
 *
 * Why not one repeated sentence: a haystack the model can predict perfectly makes attention degenerate (every
 * key looks alike) and its perplexity meaningless; real prose spreads attention and lets the lm-loss task report
 * a sane loss. Why not real essays: the standard ones (Paul Graham's) are not ours to ship. So: essays on
 * everyday topics, each paragraph built around one topic noun, sentences drawn from some thirty patterns with
 * agreement, tense and articles handled. It reads like bland essay prose, which is all a haystack needs.
 *
 * The text contains no digits (numeric needles then occur exactly once) and none of the NIAH key cities.
 */

export const PROSE_SEED = 20240715;
/** ≈ 110K SmolLM2 tokens: room for several 8K-token windows. */
export const PROSE_CHARS = 450_000;

type Noun = readonly [singular: string, plural: string];
type Verb = readonly [base: string, thirdPerson: string, past: string];

interface Topic {
  readonly name: string;
  readonly places: readonly Noun[];
  readonly things: readonly Noun[];
  readonly people: readonly Noun[];
  /** Gerund phrases: "mending nets". */
  readonly activities: readonly string[];
  /** Verbs that make sense with this topic's things as objects. */
  readonly verbs: readonly Verb[];
  /** Hand-written sentences; "{person}" / "{people}" are filled with one of the topic's people. */
  readonly notes: readonly string[];
}

const n = (singular: string, plural = `${singular}s`): Noun => [singular, plural];
/** Regular forms by the usual spelling rules; irregular ones (and doubled consonants) are given explicitly. */
function v(base: string, third?: string, past?: string): Verb {
  const consonantY = /[^aeiou]y$/.test(base);
  const regularThird = consonantY ? `${base.slice(0, -1)}ies` : /(s|sh|ch|x|z)$/.test(base) ? `${base}es` : `${base}s`;
  const regularPast = consonantY ? `${base.slice(0, -1)}ied` : base.endsWith("e") ? `${base}d` : `${base}ed`;
  return [base, third ?? regularThird, past ?? regularPast];
}

const TOPICS: readonly Topic[] = [
  {
    name: "river",
    places: [n("river"), n("riverbank"), n("mill pond"), n("ford")],
    things: [n("boat"), n("bridge"), n("reed"), n("heron"), n("current"), n("mill wheel"), n("jetty", "jetties"), n("rope")],
    people: [n("boatman", "boatmen"), n("miller"), n("angler"), n("ferry keeper")],
    activities: ["rowing against the current", "mending old boats", "watching the water rise", "fishing at dawn"],
    verbs: [v("tie"), v("mend"), v("paint"), v("watch"), v("follow"), v("cross", "crosses"), v("check")],
    notes: [
      "A good {person} can tell how deep the water is from the colour of the reeds.",
      "In a dry summer the ford is shallow enough to cross without getting your knees wet.",
      "The {people} tie their boats a little higher every autumn, because the floods have been climbing.",
      "Nothing on the {place} stays where you left it for long; the water sees to that.",
    ],
  },
  {
    name: "garden",
    places: [n("garden"), n("greenhouse", "greenhouses"), n("orchard"), n("allotment")],
    things: [n("seed"), n("hedge"), n("rose"), n("spade"), n("apple tree"), n("compost heap"), n("trellis", "trellises"), n("bean")],
    people: [n("gardener"), n("neighbour"), n("beekeeper"), n("grower")],
    activities: ["planting beans in rows", "pruning the roses", "turning the compost", "saving seeds for spring"],
    verbs: [v("plant"), v("water"), v("prune"), v("trim", "trims", "trimmed"), v("gather"), v("protect"), v("move")],
    notes: [
      "A {person} who is in a hurry will plant too early and lose half the seedlings to the frost.",
      "The best compost is the one nobody has disturbed for a full year.",
      "Every {person} keeps a few plants that do no good at all, simply because they are pleasant to look at.",
      "You learn more about soil from one wet spring than from any book about it.",
    ],
  },
  {
    name: "library",
    places: [n("library", "libraries"), n("reading room"), n("archive"), n("bookshop")],
    things: [n("book"), n("shelf", "shelves"), n("catalogue"), n("map"), n("letter"), n("ledger"), n("index", "indexes"), n("margin note")],
    people: [n("librarian"), n("reader"), n("archivist"), n("bookbinder")],
    activities: ["reading late into the evening", "repairing torn bindings", "copying out old letters", "sorting the returns"],
    verbs: [v("read", "reads", "read"), v("borrow"), v("sort"), v("mend"), v("catalogue", "catalogues", "catalogued"), v("study", "studies", "studied"), v("open")],
    notes: [
      "A {person} can usually tell what kind of week it has been from the books that come back.",
      "Some of the oldest letters in the archive were never opened by the people they were sent to.",
      "The reading room is quietest just before closing, when only the serious readers are left.",
      "A catalogue is a kind of map, and like every map it leaves out more than it shows.",
    ],
  },
  {
    name: "mountain",
    places: [n("mountain"), n("valley", "valleys"), n("ridge"), n("mountain hut")],
    things: [n("path"), n("cairn"), n("stream"), n("boot"), n("lantern"), n("stone wall"), n("sheep", "sheep"), n("signpost")],
    people: [n("shepherd"), n("walker"), n("guide"), n("climber")],
    activities: ["walking the high path", "building cairns", "waiting out the fog", "counting the sheep at dusk"],
    verbs: [v("climb"), v("follow"), v("mark"), v("cross", "crosses"), v("repair"), v("count"), v("reach", "reaches")],
    notes: [
      "On the ridge the wind decides how fast you walk, whatever your plans were.",
      "A {person} will tell you that the fog always comes from the side you are not watching.",
      "The cairns along the path were built one stone at a time by people who never met each other.",
      "Coming down is harder on the knees than going up, and most walkers forget this until it is too late.",
    ],
  },
  {
    name: "kitchen",
    places: [n("kitchen"), n("bakery", "bakeries"), n("market"), n("pantry", "pantries")],
    things: [n("loaf", "loaves"), n("oven"), n("recipe"), n("onion"), n("copper pot"), n("wooden spoon"), n("jar"), n("pie")],
    people: [n("baker"), n("cook"), n("grocer"), n("guest")],
    activities: ["baking bread before sunrise", "making soup for a crowd", "tasting as you go", "keeping a recipe book"],
    verbs: [v("bake"), v("taste"), v("stir", "stirs", "stirred"), v("share"), v("prepare"), v("clean"), v("carry", "carries", "carried")],
    notes: [
      "Bread that is rushed tastes of the rush, and every {person} knows it.",
      "The oldest recipes are the ones written in pencil, with notes crossed out and written again.",
      "A kitchen is warmest in the hour before anyone else is awake.",
      "Most soups are improved by a second day, and so are most arguments.",
    ],
  },
  {
    name: "railway",
    places: [n("station"), n("platform"), n("signal box", "signal boxes"), n("branch line")],
    things: [n("train"), n("carriage"), n("timetable"), n("ticket"), n("signal"), n("whistle"), n("luggage rack"), n("lamp")],
    people: [n("porter"), n("passenger"), n("guard"), n("stationmaster")],
    activities: ["waiting for the last train", "reading timetables", "watching the signals change", "travelling by the slow line"],
    verbs: [v("board"), v("check"), v("clean"), v("watch", "watches"), v("miss", "misses"), v("change"), v("follow")],
    notes: [
      "The slow train stops at every village, which is exactly why some people prefer it.",
      "A {person} learns the sound of each engine long before learning the timetable.",
      "On a cold platform strangers talk to each other in a way they never would in a warm room.",
      "The signals change with a heavy click that you can hear from the far end of the station.",
    ],
  },
  {
    name: "harbour",
    places: [n("harbour"), n("lighthouse"), n("quay"), n("fish market")],
    things: [n("net"), n("sail"), n("tide"), n("gull"), n("anchor"), n("storm"), n("buoy"), n("lobster pot")],
    people: [n("sailor"), n("fisherwoman", "fisherwomen"), n("harbour master"), n("lighthouse keeper")],
    activities: ["mending nets on the quay", "reading the weather", "rowing out at first light", "keeping the lamp lit"],
    verbs: [v("mend"), v("haul"), v("watch", "watches"), v("tie"), v("lower"), v("repair"), v("mark")],
    notes: [
      "Every {person} reads the sky before reading the news.",
      "At low tide the harbour smells of weed and salt and old rope.",
      "The lighthouse keeper kept a log of every ship that passed, even on nights when nothing did.",
      "Gulls know the time the fishing boats come in better than most clocks do.",
    ],
  },
  {
    name: "workshop",
    places: [n("workshop"), n("shed"), n("timber yard"), n("forge")],
    things: [n("chisel"), n("joint"), n("plank"), n("cabinet"), n("workbench", "workbenches"), n("saw"), n("hinge"), n("drawer")],
    people: [n("carpenter"), n("apprentice"), n("joiner"), n("smith")],
    activities: ["sharpening chisels", "fitting a drawer", "planing rough boards", "learning a trade slowly"],
    verbs: [v("sharpen"), v("fit", "fits", "fitted"), v("sand"), v("measure"), v("build", "builds", "built"), v("polish", "polishes", "polished"), v("repair")],
    notes: [
      "A sharp chisel is safer than a blunt one, because it goes where you send it.",
      "The {person} measured twice and cut once, and still kept a spare plank under the bench.",
      "A good joint needs no glue, though most carpenters use some anyway.",
      "The workshop floor tells the story of the week in shavings and sawdust.",
    ],
  },
  {
    name: "school",
    places: [n("school"), n("classroom"), n("playground"), n("schoolhouse", "schoolhouses")],
    things: [n("lesson"), n("notebook"), n("question"), n("blackboard"), n("pencil"), n("spelling test"), n("globe"), n("essay")],
    people: [n("teacher"), n("pupil"), n("headmistress", "headmistresses"), n("parent")],
    activities: ["teaching children to read", "marking essays by lamplight", "asking good questions", "learning the names of birds"],
    verbs: [v("answer"), v("mark"), v("explain"), v("collect"), v("correct"), v("remember"), v("copy", "copies", "copied")],
    notes: [
      "A {person} learns as much from the questions children ask as from the answers they give.",
      "The blackboard is cleaned every evening, but the faint ghosts of old lessons never quite disappear.",
      "Some of the best lessons happened on the days when the plan fell apart.",
      "Children remember the teacher who listened long after they have forgotten what was taught.",
    ],
  },
  {
    name: "village",
    places: [n("village"), n("square"), n("village hall"), n("high street")],
    things: [n("bell"), n("cart"), n("well"), n("stall"), n("notice board"), n("chimney", "chimneys"), n("gate"), n("lane")],
    people: [n("shopkeeper"), n("postman", "postmen"), n("villager"), n("blacksmith")],
    activities: ["running the village fete", "repairing the church roof", "walking to market", "trading news at the well"],
    verbs: [v("ring", "rings", "rang"), v("paint"), v("repair"), v("pass", "passes"), v("open"), v("close"), v("visit")],
    notes: [
      "News travels round the square faster than the postman can walk.",
      "The bell in the tower has rung for weddings and funerals for longer than anyone can remember.",
      "A {person} in a small village knows which gate squeaks and which lane floods.",
      "On market day the whole village seems to be outside at once.",
    ],
  },
  {
    name: "music",
    places: [n("concert hall"), n("choir loft"), n("music room"), n("bandstand")],
    things: [n("fiddle"), n("tune"), n("song"), n("piano"), n("drum"), n("score"), n("chorus", "choruses"), n("melody", "melodies")],
    people: [n("musician"), n("singer"), n("conductor"), n("piano tuner")],
    activities: ["practising scales", "singing in a choir", "tuning an old piano", "learning a song by ear"],
    verbs: [v("play"), v("tune"), v("practise"), v("hum", "hums", "hummed"), v("learn"), v("repeat"), v("remember")],
    notes: [
      "A tune learned by ear is rarely forgotten, even when the name of it is.",
      "The {person} tapped the stand twice, and the whole hall fell silent.",
      "An old piano has moods, and a patient tuner learns every one of them.",
      "Singing in a choir teaches you to listen to the voice beside you before your own.",
    ],
  },
  {
    name: "sky",
    places: [n("observatory", "observatories"), n("hilltop"), n("rooftop"), n("open field")],
    things: [n("star"), n("telescope"), n("comet"), n("star chart"), n("planet"), n("cloud"), n("moon"), n("lens", "lenses")],
    people: [n("astronomer"), n("observer"), n("navigator"), n("stargazer")],
    activities: ["watching the stars", "drawing star charts", "waiting for clear nights", "tracking a comet"],
    verbs: [v("observe"), v("track"), v("sketch", "sketches"), v("follow"), v("name"), v("map", "maps", "mapped"), v("watch", "watches")],
    notes: [
      "On a clear winter night the stars look close enough to count, though nobody ever finishes.",
      "A {person} keeps notes in pencil, because the cold makes ink freeze in the pen.",
      "Clouds can ruin a week of planning in a single evening.",
      "The moon is the easiest thing in the sky to find and the hardest to draw well.",
    ],
  },
  {
    name: "farm",
    places: [n("farm"), n("barn"), n("meadow"), n("wheat field")],
    things: [n("plough"), n("hive"), n("harvest"), n("haystack"), n("fence"), n("tractor"), n("hen"), n("furrow")],
    people: [n("farmer"), n("farmhand"), n("beekeeper"), n("shepherdess", "shepherdesses")],
    activities: ["bringing in the harvest", "mending fences", "keeping bees", "ploughing the long field"],
    verbs: [v("plough"), v("mend"), v("gather"), v("feed", "feeds", "fed"), v("store"), v("harvest"), v("check")],
    notes: [
      "A {person} watches the sky as closely as the soil, because one is useless without the other.",
      "The harvest is never gathered in exactly the way it was planned.",
      "Bees are calmer on warm, still mornings, and so are the people who keep them.",
      "An old fence tells you where someone once thought a boundary ought to be.",
    ],
  },
  {
    name: "clock",
    places: [n("clock tower"), n("watchmaker's shop"), n("town hall"), n("attic")],
    things: [n("clock"), n("pendulum"), n("spring"), n("gear"), n("dial"), n("key"), n("hand"), n("chime")],
    people: [n("clockmaker"), n("watchmaker"), n("caretaker"), n("collector")],
    activities: ["winding the tower clock", "cleaning tiny gears", "setting clocks by the sun", "listening for the chime"],
    verbs: [v("wind", "winds", "wound"), v("clean"), v("oil"), v("adjust"), v("open"), v("replace"), v("listen to", "listens to", "listened to")],
    notes: [
      "A {person} listens to a clock before opening it, the way a doctor listens to a chest.",
      "The tower clock loses a little time every winter, when the cold thickens the oil.",
      "Small gears wear faster than large ones, which surprises almost everyone.",
      "Nobody notices a clock that keeps good time; everyone notices one that does not.",
    ],
  },
  {
    name: "post",
    places: [n("post office"), n("sorting room"), n("letterbox", "letterboxes"), n("country road")],
    things: [n("letter"), n("parcel"), n("stamp"), n("envelope"), n("postcard"), n("mailbag"), n("address", "addresses"), n("bicycle")],
    people: [n("postwoman", "postwomen"), n("clerk"), n("letter writer"), n("courier")],
    activities: ["writing letters by hand", "sorting the morning post", "delivering parcels in the rain", "keeping old postcards"],
    verbs: [v("post"), v("sort"), v("deliver"), v("seal"), v("address", "addresses", "addressed"), v("open"), v("answer")],
    notes: [
      "A letter written by hand takes longer to write and longer to forget.",
      "The {person} knew every dog on the round and which ones were only pretending to be fierce.",
      "Some parcels travel further than the people who send them ever will.",
      "Old postcards are mostly about the weather, and yet people keep them for decades.",
    ],
  },
  {
    name: "forest",
    places: [n("forest"), n("clearing"), n("woodland"), n("pine wood")],
    things: [n("oak"), n("fox", "foxes"), n("trail"), n("fallen log"), n("mushroom"), n("owl"), n("fern"), n("woodpile")],
    people: [n("forester"), n("woodcutter"), n("ranger"), n("naturalist")],
    activities: ["walking the old trails", "stacking firewood", "listening for owls", "planting young oaks"],
    verbs: [v("clear"), v("stack"), v("follow"), v("notice"), v("plant"), v("protect"), v("record")],
    notes: [
      "A {person} can read a clearing like a page, from the tracks at the edge to the ash in the middle.",
      "Oaks grow so slowly that the people who plant them rarely see them grown.",
      "In the pine wood the ground is soft and the sound of footsteps disappears.",
      "The owls begin calling just as the last light goes out of the trees.",
    ],
  },
  {
    name: "painting",
    places: [n("studio"), n("gallery", "galleries"), n("attic room"), n("seaside cliff")],
    things: [n("canvas", "canvases"), n("brush", "brushes"), n("sketchbook"), n("colour"), n("portrait"), n("frame"), n("easel"), n("landscape")],
    people: [n("painter"), n("student"), n("framer"), n("visitor")],
    activities: ["painting outdoors", "mixing colours", "sketching faces on the train", "framing old pictures"],
    verbs: [v("paint"), v("sketch", "sketches"), v("frame"), v("hang", "hangs", "hung"), v("clean"), v("study", "studies", "studied"), v("admire")],
    notes: [
      "A {person} spends more time looking than painting, though it rarely seems that way from outside.",
      "The light on the cliff changes every few minutes, and the painting has to choose one moment.",
      "An unfinished canvas in the corner of a studio is a kind of promise.",
      "Colours mixed on a cold morning never look quite the same by the afternoon.",
    ],
  },
  {
    name: "winter",
    places: [n("cottage"), n("frozen lake"), n("snowfield"), n("woodshed")],
    things: [n("stove"), n("sledge"), n("blanket"), n("snowdrift"), n("kettle"), n("scarf", "scarves"), n("icicle"), n("log")],
    people: [n("traveller"), n("child", "children"), n("skater"), n("innkeeper")],
    activities: ["chopping wood for the stove", "skating on the lake", "waiting for the thaw", "clearing snow from the path"],
    verbs: [v("light", "lights", "lit"), v("carry", "carries", "carried"), v("clear"), v("stack"), v("warm"), v("fold"), v("pull")],
    notes: [
      "The stove has to be fed before breakfast, or the whole cottage wakes up cold.",
      "A {person} walking in fresh snow leaves a record of every hesitation.",
      "Icicles grow longest on the north side, where the sun never reaches the eaves.",
      "Winter makes every small warmth seem like a gift.",
    ],
  },
];

const ADJECTIVES = [
  "old", "quiet", "narrow", "patient", "careful", "bright", "heavy", "small", "familiar", "crooked", "steady",
  "ordinary", "unusual", "gentle", "stubborn", "plain", "worn", "empty", "early", "elegant", "simple", "useful",
  "modest", "sturdy", "faded", "busy", "distant", "local", "humble", "sensible", "awkward", "lovely", "muddy",
  "tidy", "cheerful", "solemn", "fragile", "generous", "weathered", "neglected", "clever", "hidden", "overgrown",
  "ancient", "rough", "smooth", "shabby", "handsome", "restless", "sleepy",
];
const ADVERBS = [
  "slowly", "carefully", "quietly", "gradually", "patiently", "steadily", "without much fuss", "in silence",
  "with great care", "more often than not", "almost every day", "now and then", "without complaint", "by hand",
];
const FREQUENCY = ["rarely", "seldom", "often", "sometimes", "usually", "hardly ever", "always", "never quite"];
const QUANTIFIERS = ["Most", "Many", "Some", "A few", "Very few", "Nearly all"];
const TIMES = [
  "in the morning", "every spring", "after a long winter", "before the first frost", "by late afternoon",
  "on most days", "at the end of the season", "for many years", "during the war years", "on Sunday evenings",
  "in the last days of summer", "when the weather turns", "at first light", "long after dark", "once a year",
  "in good years and bad",
];
const TIMES_AGO = [
  "Years ago", "When I was young", "One autumn", "Long before I understood any of this", "Some time ago",
  "The first winter I lived there", "As a child", "Not long ago", "Once, on a wet afternoon", "Many summers ago",
];
const PREPOSITIONS = ["near", "beside", "behind", "across", "beyond", "at the edge of", "on the far side of", "just past", "below"];
const CONNECTIVES = [
  "However", "Still", "In practice", "Over time", "For that reason", "Even so", "Of course", "In the end", "At first",
  "Later", "Meanwhile", "Oddly enough", "Looking back", "As it happens", "All the same", "Sooner or later",
];
const ABSTRACT = [
  "patience", "attention", "habit", "good company", "a steady hand", "a little courage", "practice", "humility",
  "curiosity", "time", "a sense of humour", "careful listening",
];
const FEELINGS = [
  "how quiet it was", "what it taught me", "the sound it made", "how small I felt", "the smell of the air",
  "who was with me", "how long it took", "the light that afternoon",
];
const OPINION_VERBS = ["assume", "believe", "think", "imagine", "suppose", "forget"];
const INTRANSITIVE: readonly Verb[] = [
  v("wait"), v("rest"), v("change"), v("settle"), v("drift"), v("return"), v("linger"), v("last"), v("fade"),
  v("wander"), v("weather"), v("endure"), v("improve"), v("age"),
];
const NO_ARTICLE_AN = ["use", "uni", "eu", "one", "once"];
const AN_CONSONANT = ["hour", "honest", "heir"];

function article(word: string): string {
  const w = word.toLowerCase();
  if (AN_CONSONANT.some((p) => w.startsWith(p))) return "an";
  if (NO_ARTICLE_AN.some((p) => w.startsWith(p))) return "a";
  return /^[aeiou]/.test(w) ? "an" : "a";
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const titleCase = (s: string) =>
  s
    .split(" ")
    .map((w, i) => (i > 0 && ["of", "the", "a", "an", "in", "on", "and", "for", "to", "at", "by"].includes(w) ? w : capitalize(w)))
    .join(" ");

class ProseWriter {
  private topic: Topic = TOPICS[0];
  private focus: Noun = TOPICS[0].things[0];

  constructor(private readonly rand: () => number) {}

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rand() * items.length)];
  }

  private chance(p: number): boolean {
    return this.rand() < p;
  }

  // Noun phrases -------------------------------------------------------------------------------------------------

  private thing(): Noun {
    return this.chance(0.4) ? this.focus : this.pick(this.topic.things);
  }

  private adjective(): string {
    return this.pick(ADJECTIVES);
  }

  /** "a crooked bridge", "an old boat" */
  private aThing(adj = this.chance(0.45)): string {
    const noun = this.thing()[0];
    const word = adj ? `${this.adjective()} ${noun}` : noun;
    return `${article(word)} ${word}`;
  }

  /** "the bridge" / "the old bridges" */
  private theThing(plural: boolean, adj = this.chance(0.25)): string {
    const t = this.thing();
    return `the ${adj ? `${this.adjective()} ` : ""}${plural ? t[1] : t[0]}`;
  }

  private place(): string {
    return `${this.pick(PREPOSITIONS)} the ${this.pick(this.topic.places)[0]}`;
  }

  private person(plural: boolean): string {
    const p = this.pick(this.topic.people);
    return plural ? p[1] : p[0];
  }

  /** "a shepherd", "an angler" */
  private aPerson(): string {
    const p = this.person(false);
    return `${article(p)} ${p}`;
  }

  private verb(): Verb {
    return this.pick(this.topic.verbs);
  }

  /**
   * A present-tense clause with agreement. People act on things ("a careful miller mends the nets"); things only
   * do what things do ("the old boats drift slowly"), which keeps the nonsense down.
   */
  private clause(): string {
    const plural = this.chance(0.5);
    if (this.chance(0.35)) {
      const iv = this.pick(INTRANSITIVE);
      return `${this.theThing(plural)} ${plural ? iv[0] : iv[1]} ${this.pick(ADVERBS)}`;
    }
    const subject = plural ? `the ${this.person(true)}` : this.chance(0.5) ? this.aPerson() : `the ${this.person(false)}`;
    const tv = this.verb();
    const object = this.chance(0.5) ? this.theThing(this.chance(0.5)) : this.aThing();
    const tail = this.chance(0.5) ? ` ${this.pick(TIMES)}` : this.chance(0.5) ? ` ${this.place()}` : "";
    return `${subject} ${plural ? tv[0] : tv[1]} ${object}${tail}`;
  }

  // Sentences ----------------------------------------------------------------------------------------------------

  private readonly patterns: readonly (() => string)[] = [
    () => `${this.pick(QUANTIFIERS)} ${this.person(true)} ${this.pick(FREQUENCY)} ${this.verb()[0]} ${this.theThing(true)} ${this.pick(TIMES)}.`,
    () => `${capitalize(this.theThing(false))} ${this.place()} ${this.pick(INTRANSITIVE)[1]} ${this.pick(ADVERBS)}.`,
    () => `${this.pick(TIMES_AGO)}, I ${this.verb()[2]} ${this.aThing()} ${this.place()}, and I still remember ${this.pick(FEELINGS)}.`,
    () => `It is easy to ${this.pick(OPINION_VERBS)} that ${this.theThing(true)} are ${this.adjective()}, but ${this.clause()}.`,
    () => `This is why ${this.person(true)} ${this.verb()[0]} ${this.theThing(true)} ${this.pick(ADVERBS)}.`,
    () => `There is ${this.aThing(true)} ${this.place()} that nobody ${this.verb()[2]} for years, and it shows.`,
    () => {
      const who = this.person(false);
      return `${capitalize(article(who))} ${who} I once knew ${this.verb()[2]} ${this.theThing(false)} ${this.pick(TIMES)}.`;
    },
    () => `Why do ${this.person(true)} ${this.verb()[0]} ${this.theThing(true)} at all? Partly because ${this.clause()}, and partly because ${this.clause()}.`,
    () => {
      const pool = this.topic.things.slice();
      const [a, b, c] = [0, 1, 2].map(() => `the ${pool.splice(Math.floor(this.rand() * pool.length), 1)[0][1]}`);
      return `${capitalize(a)}, ${b} and ${c} all ${this.pick(INTRANSITIVE)[0]} ${this.pick(ADVERBS)}, even if ${this.clause()}.`;
    },
    () => `What matters most is whether ${this.clause()}.`,
    () => `${capitalize(this.pick(this.topic.activities))} is ${this.adjective()} work, and it asks for ${this.pick(ABSTRACT)}.`,
    () => `${this.pick(CONNECTIVES)}, ${this.clause()}.`,
    () => `${this.pick(CONNECTIVES)}, ${this.clause()}.`,
    () => `${capitalize(this.theThing(false))} ${this.place()} looked like ${this.aThing(true)} ${this.pick(TIMES)}.`,
    () => {
      const tv = this.verb();
      return `If you ever ${tv[0]} ${this.aThing()}, do it ${this.pick(ADVERBS)} and ask ${this.aPerson()} for advice.`;
    },
    () => `I suspect that ${this.clause()}, though I could not prove it.`,
    () => `Nobody sets out to love ${this.theThing(true, false)}; it happens ${this.pick(["gradually", "by accident", "over the years", "almost without noticing"])}.`,
    () => `The ${this.person(true)} say that ${this.clause()}, and they are usually right.`,
    () => `${capitalize(this.clause())}.`,
    () => `${capitalize(this.clause())}, and ${this.clause()}.`,
    () => `${capitalize(this.clause())}, because ${this.clause()}.`,
    () => `When ${this.clause()}, ${this.clause()}.`,
    () => `It took me a long time to see that ${this.pick(this.topic.activities)} is mostly a matter of ${this.pick(ABSTRACT)}.`,
    () => `My ${this.pick(["grandmother", "grandfather", "aunt", "uncle", "father", "mother", "neighbour", "teacher"])} used to say that ${this.theThing(true, false)} ${this.pick(["never lie", "keep their own time", "remember everything", "forgive nothing", "teach patience"])}.`,
    () => this.note(),
    () => `Even ${this.aThing(true)} can ${this.pick(INTRANSITIVE)[0]} ${this.pick(ADVERBS)} if ${this.clause()}.`,
    () => `The difference between ${this.aThing(true)} and ${this.aThing(true)} is smaller than it looks.`,
  ];

  private note(): string {
    const who = this.person(false);
    return this.pick(this.topic.notes)
      .replace(/\b([Aa]) \{person\}/, (_, a: string) => `${a === "A" ? capitalize(article(who)) : article(who)} ${who}`)
      .replace("{person}", who)
      .replace("{people}", this.person(true));
  }

  paragraph(): string {
    this.focus = this.pick(this.topic.things);
    const count = 4 + Math.floor(this.rand() * 5);
    const used = new Set<number>();
    const sentences: string[] = [];
    while (sentences.length < count) {
      // No pattern twice in one paragraph: repeated frames read as machine text.
      const k = Math.floor(this.rand() * this.patterns.length);
      if (used.has(k)) continue;
      used.add(k);
      sentences.push(this.patterns[k]());
    }
    return sentences.join(" ");
  }

  essay(): string {
    this.topic = this.pick(TOPICS);
    const thing = this.pick(this.topic.things);
    const place = this.pick(this.topic.places);
    const title = titleCase(
      this.pick([
        `on ${this.pick(this.topic.activities)}`,
        `the ${this.adjective()} ${thing[0]}`,
        `notes from the ${place[0]}`,
        `what the ${this.pick(this.topic.people)[1]} know`,
        `in praise of ${thing[1]}`,
        `a ${place[0]} in ${this.pick(["spring", "summer", "autumn", "winter"])}`,
      ]),
    );
    const paragraphs = 5 + Math.floor(this.rand() * 6);
    return [title, ...Array.from({ length: paragraphs }, () => this.paragraph())].join("\n\n");
  }
}

/** Essays separated by blank lines, stopping at the first essay boundary past `targetChars`. */
export function generateProse(seed: number, targetChars: number): string {
  const writer = new ProseWriter(mulberry32(seed));
  const essays: string[] = [];
  let chars = 0;
  while (chars < targetChars) {
    const essay = writer.essay();
    essays.push(essay);
    chars += essay.length + 2;
  }
  return essays.join("\n\n") + "\n";
}
