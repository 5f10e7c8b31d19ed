// A ledger entry's page checks, in the reader's own browser, that the entry is in the
// signed log: it hashes the entry's bytes into the leaf hash the page shows, follows the
// inclusion proof (RFC 9162) to a root, and checks the log's Ed25519 signature on the
// checkpoint that names that root. The server only supplies data; a reader need not
// trust it to compute the verdict (the offline verifier remains for the key's provenance).
"use strict";

(() => {
  const box = document.querySelector("[data-inclusion]");
  if (!box) {
    return;
  }
  const encoder = new TextEncoder();
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const concat = (parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  const sha256 = async (...parts) =>
    new Uint8Array(await crypto.subtle.digest("SHA-256", concat(parts)));

  // RFC 9162 section 2.1.3.2, as sahab.ledger.merkle.root_from_inclusion_proof.
  async function rootFromProof(index, size, leaf, proof) {
    if (!(index >= 0 && index < size)) {
      throw new Error("the index is not in the tree");
    }
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0) {
        throw new Error("the proof is too long");
      }
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(Uint8Array.of(1), p, r);
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      } else {
        r = await sha256(Uint8Array.of(1), r, p);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) {
      throw new Error("the proof is too short");
    }
    return r;
  }

  // C2SP signed-note: the body up to the blank line, signed by "— name base64(id || sig)".
  async function signedBody(note, vkey) {
    const first = vkey.indexOf("+");
    const second = vkey.indexOf("+", first + 1);
    const name = vkey.slice(0, first);
    const typed = bytes(vkey.slice(second + 1));  // 0x01 || Ed25519 public key
    const id = (await sha256(encoder.encode(name + "\n"), typed)).slice(0, 4);
    const key = await crypto.subtle.importKey("raw", typed.slice(1), { name: "Ed25519" },
      false, ["verify"]);
    const split = note.indexOf("\n\n");
    const body = note.slice(0, split + 1);
    for (const line of note.slice(split + 2).split("\n")) {
      const words = line.split(" ");
      if (words.length !== 3 || words[0] !== "\u2014" || words[1] !== name) {
        continue;
      }
      const signature = bytes(words[2]);
      if (equal(signature.slice(0, 4), id) && await crypto.subtle.verify(
        { name: "Ed25519" }, key, signature.slice(4), encoder.encode(body))) {
        return body;
      }
    }
    throw new Error("the checkpoint is not signed by the ledger's key");
  }

  async function verify() {
    const response = await fetch(box.dataset.entryUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      throw new Error(`the ledger answered ${response.status}`);
    }
    const data = await response.json();
    const leaf = await sha256(Uint8Array.of(0), bytes(data.body_base64));
    if (data.index !== Number(box.dataset.index) || !equal(leaf, bytes(box.dataset.leafHash))) {
      throw new Error("the entry's bytes are not the ones this page shows");
    }
    const [, size, root] = (await signedBody(data.checkpoint, box.dataset.vkey)).split("\n");
    if (!equal(await rootFromProof(data.index, Number(size), leaf, data.proof.map(bytes)),
               bytes(root))) {
      throw new Error("the inclusion proof does not lead to the signed root");
    }
    return Number(size);
  }

  function show(state, text) {
    const line = document.createElement("span");
    line.dataset.state = state;
    line.textContent = text;
    box.replaceChildren(line);
  }

  if (!window.crypto || !crypto.subtle) {
    show("unavailable", box.dataset.unavailable);
    return;
  }
  verify().then(
    (size) => show("included", box.dataset.included.replace("{size}", String(size))),
    (error) => {
      console.warn("ledger inclusion:", error);
      show("failed", box.dataset.failed);
    },
  );
})();
