// The JavaScript half of `make types-check` (scripts/types-check runs it):
//   node check.mjs SCHEMA_DIR VALUES_DIR REFUSED_JSON TGTYPES_JS
// 1. Ajv 2020 in strict mode, with ajv-formats, takes every file of SCHEMA_DIR as it is (all
//    in one instance, as docs/redis-keys.md shows);
// 2. it accepts every value the suite exported (VALUES_DIR/values-*.jsonl) and
// 3. refuses every wrong value of tests/schema_cases.py (REFUSED_JSON);
// 4. the TypeScript types quicktype generated (compiled to TGTYPES_JS) read every exported
//    value with their runtime checks (Convert.to<Type>).
// Prints one line per finding and a summary; exits 1 on any failure.
import {readdirSync, readFileSync} from "node:fs";
import {createRequire} from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const [schemaDir, valuesDir, refusedFile, tgtypesJs] = process.argv.slice(2);
const failures = [];
const fail = (line) => {
  failures.push(line);
  if (failures.length <= 40) console.error(`types-check: ${line}`);
};

const ajv = new Ajv2020({strict: true, allErrors: true});
addFormats(ajv);
const schemas = {};
const validators = {};
for (const file of readdirSync(schemaDir).filter((f) => f.endsWith(".json")).sort()) {
  schemas[file] = JSON.parse(readFileSync(path.join(schemaDir, file), "utf8"));
  try {
    validators[file] = ajv.compile(schemas[file]);
  } catch (e) {
    fail(`ajv strict refuses ${file}: ${e.message}`);
  }
}

const entries = [];
for (const file of readdirSync(valuesDir).filter((f) => /^values-.*\.jsonl$/.test(f)).sort()) {
  for (const line of readFileSync(path.join(valuesDir, file), "utf8").split("\n")) {
    if (line) entries.push(JSON.parse(line));
  }
}

const {Convert} = require(path.resolve(tgtypesJs));
// What reads a value of `schema` with the generated TypeScript: its type's converter, or,
// for an array of a type, that converter for each item.
function tsReader(schema) {
  const root = schemas[schema];
  const converter = (title) => {
    const read = Convert[`to${title}`];
    if (typeof read !== "function") throw new Error(`no Convert.to${title} in the generated types`);
    return (value) => read.call(Convert, JSON.stringify(value));
  };
  if (root.type === "object") return converter(root.title);
  if (root.type === "array" && root.items?.$ref?.startsWith("#/$defs/")) {
    const read = converter(root.items.$ref.slice("#/$defs/".length));
    return (value) => value.forEach(read);
  }
  return (value) => {
    if (!Array.isArray(value)) throw new Error("not an array");
  };
}

const accepted = {};
let read = 0;
for (const {schema, key, value} of entries) {
  const validate = validators[schema];
  if (!validate) {
    fail(`${key}: no schema file ${schema}`);
    continue;
  }
  if (!validate(value)) {
    fail(`${key}: ajv refuses a value the suite wrote: ${ajv.errorsText(validate.errors)}`);
    continue;
  }
  accepted[schema] = (accepted[schema] ?? 0) + 1;
  try {
    tsReader(schema)(value);
    read += 1;
  } catch (e) {
    fail(`${key}: the TypeScript types cannot read it (${schema}): ${e.message}`);
  }
}
if (entries.length === 0) fail(`no exported values in ${valuesDir}`);

const refused = JSON.parse(readFileSync(refusedFile, "utf8"));
let refusedCount = 0;
for (const {schema, value, why} of refused) {
  if (validators[schema] && validators[schema](value)) {
    fail(`ajv accepts a wrong value for ${schema} (${why}): ${JSON.stringify(value).slice(0, 200)}`);
  } else {
    refusedCount += 1;
  }
}

const acceptedCount = Object.values(accepted).reduce((a, b) => a + b, 0);
const perSchema = Object.entries(accepted).map(([s, n]) => `${s} ${n}`).join(", ");
console.log(
  `ajv (strict, 2020-12, formats): ${Object.keys(validators).length} schema files compiled; ` +
    `accepted ${acceptedCount} of ${entries.length} exported values (${perSchema}); ` +
    `refused ${refusedCount} of ${refused.length} wrong values`,
);
console.log(`TypeScript (Convert.to…, runtime checks on): read ${read} values`);
if (failures.length > 0) {
  console.error(`types-check: ${failures.length} failure(s)`);
  process.exit(1);
}
