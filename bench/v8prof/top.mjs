// Self time by function from a `node --cpu-prof` profile, Rust names demangled (legacy
// `_ZN…E` scheme, hash dropped).
//   node top.mjs <file.cpuprofile> [rows]
import fs from "node:fs";

function demangle(name) {
  if (!name.startsWith("_ZN")) return name;
  const parts = [];
  let i = 3;
  while (i < name.length && name[i] !== "E") {
    let j = i;
    while (j < name.length && name[j] >= "0" && name[j] <= "9") j++;
    const len = Number(name.slice(i, j));
    if (!len) break;
    parts.push(name.slice(j, j + len));
    i = j + len;
  }
  if (/^h[0-9a-f]{16}$/.test(parts.at(-1) ?? "")) parts.pop();
  return parts.join("::")
    .replaceAll("$LT$", "<").replaceAll("$GT$", ">").replaceAll("$u20$", " ")
    .replaceAll("$RF$", "&").replaceAll("$C$", ",").replaceAll("..", "::");
}

const [, , file, rowsArg] = process.argv;
const profile = JSON.parse(fs.readFileSync(file, "utf8"));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
for (const id of profile.samples) {
  const frame = nodes.get(id).callFrame;
  const name = demangle(frame.functionName || frame.url || "(anonymous)");
  self.set(name, (self.get(name) ?? 0) + 1);
}
const total = profile.samples.length;
console.log(`${total} samples; self time by function:`);
for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(rowsArg || 40))) {
  console.log(`${(100 * n / total).toFixed(1).padStart(5)} %  ${String(n).padStart(6)}  ${name.slice(0, 140)}`);
}
