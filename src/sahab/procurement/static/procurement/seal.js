// Sealed bids in the browser (format sahab-bid/2, as procurement/sealing.py): the bid is
// encrypted to the tender's opening committee and signed with the company's Ed25519 key
// right here, with WebCrypto; the page posts only the envelope. The signing key is made
// in this browser, cannot be exported, and is kept in IndexedDB.
"use strict";
(() => {
  const enc = new TextEncoder();
  const FORMAT = "sahab-bid/2";

  const b64 = (bytes) => {
    const view = new Uint8Array(bytes);
    let text = "";
    for (let i = 0; i < view.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, view.subarray(i, i + 0x8000));
    }
    return btoa(text);
  };
  const unb64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const concat = (parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const hex = async (bytes) => [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");

  // every set of t positions among 1..n, in itertools.combinations order
  const subsets = (n, t) => {
    const out = [];
    const walk = (start, chosen) => {
      if (chosen.length === t) { out.push(chosen); return; }
      for (let p = start; p <= n; p++) walk(p + 1, [...chosen, p]);
    };
    walk(1, []);
    return out;
  };

  // --- the company's key, kept in this browser -------------------------------------------
  const store = () => new Promise((resolve, reject) => {
    const open = indexedDB.open("sahab-bid-keys", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("keys");
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const keyOp = async (mode, fn) => {
    const db = await store();
    return new Promise((resolve, reject) => {
      const request = fn(db.transaction("keys", mode).objectStore("keys"));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  };
  const loadKey = (company) => keyOp("readonly", (s) => s.get(`company-${company}`));
  const saveKey = (company, value) => keyOp("readwrite", (s) => s.put(value, `company-${company}`));

  async function makeKey(company) {
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    const publicRaw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    const message = enc.encode(`sahab-signing-key/1\ncompany ${company}\nkey ${b64(publicRaw)}\n`);
    const proof = await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, message);
    await saveKey(company, { privateKey: pair.privateKey, publicKey: b64(publicRaw),
                             fingerprint: await hex(publicRaw) });
    return { publicKey: b64(publicRaw), proof: b64(proof) };
  }

  // --- sealing ----------------------------------------------------------------------------
  async function wrapKey(secrets, ephemeral, tender, members) {
    const ikm = await crypto.subtle.importKey("raw", concat(secrets), "HKDF", false,
                                              ["deriveBits"]);
    const bits = await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: ephemeral,
        info: enc.encode(`${FORMAT} wrap\n${tender}\n${members.join(",")}`) }, ikm, 256);
    return crypto.subtle.importKey("raw", bits, "AES-GCM", false, ["encrypt"]);
  }

  async function seal({ tender, company, committee, threshold, content, key }) {
    const bidKeyRaw = crypto.getRandomValues(new Uint8Array(32));
    const bidKey = await crypto.subtle.importKey("raw", bidKeyRaw, "AES-GCM", false, ["encrypt"]);
    const nonce = crypto.getRandomValues(new Uint8Array(12));
    const ciphertext = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: enc.encode(`${FORMAT}\n${tender}\n${company}`) },
      bidKey, enc.encode(JSON.stringify(content)));
    const ephemeral = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
    const ephemeralRaw = new Uint8Array(await crypto.subtle.exportKey("raw", ephemeral.publicKey));
    const secrets = [];
    for (const member of committee) {
      const pub = await crypto.subtle.importKey("raw", unb64(member), { name: "X25519" }, false, []);
      secrets.push(new Uint8Array(await crypto.subtle.deriveBits(
        { name: "X25519", public: pub }, ephemeral.privateKey, 256)));
    }
    const lines = [FORMAT, `tender ${tender}`, `company ${company}`, `key ${key.fingerprint}`,
                   `ephemeral ${b64(ephemeralRaw)}`, `nonce ${b64(nonce)}`,
                   `ciphertext ${b64(ciphertext)}`];
    for (const members of subsets(committee.length, threshold)) {
      const wk = await wrapKey(members.map((p) => secrets[p - 1]), ephemeralRaw, tender, members);
      const wrapNonce = crypto.getRandomValues(new Uint8Array(12));
      const wrapped = await crypto.subtle.encrypt(
        { name: "AES-GCM", iv: wrapNonce, additionalData: enc.encode(tender) }, wk, bidKeyRaw);
      lines.push(`wrap ${members.join(",")} ${b64(wrapNonce)} ${b64(wrapped)}`);
    }
    const signed = lines.join("\n") + "\n";
    const signature = await crypto.subtle.sign({ name: "Ed25519" }, key.privateKey,
                                               enc.encode(signed));
    return `${signed}signature ${b64(signature)}\n`;
  }

  async function documents(input) {
    const out = [];
    for (const file of input ? input.files : []) {
      const data = new Uint8Array(await file.arrayBuffer());
      out.push({ name: file.name, media_type: file.type, sha256: await hex(data),
                 content: b64(data) });
    }
    return out;
  }

  // --- the page ---------------------------------------------------------------------------
  const status = (box, text) => { if (box) box.textContent = text; };

  async function setUp(panel) {
    const company = Number(panel.dataset.company);
    const registered = (panel.dataset.registered || "").split(" ").filter(Boolean);
    const form = panel.querySelector("form.seal-form");
    const keyForm = panel.querySelector("form.register-key");
    const box = panel.querySelector(".seal-status");
    const stored = await loadKey(company);
    const usable = stored && registered.includes(stored.fingerprint);
    if (keyForm) keyForm.hidden = Boolean(usable);
    if (form) form.hidden = !usable;
    if (keyForm) {
      keyForm.addEventListener("submit", async (event) => {
        if (keyForm.elements.public_key.value) return;  // filled in: let it go
        event.preventDefault();
        const made = await makeKey(company);
        keyForm.elements.public_key.value = made.publicKey;
        keyForm.elements.proof.value = made.proof;
        keyForm.submit();
      });
    }
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const key = await loadKey(company);
        const prices = {};
        for (const input of form.querySelectorAll("input[data-lot]")) {
          if (input.value.trim()) prices[input.dataset.lot] = input.value.trim();
        }
        if (!Object.keys(prices).length) throw new Error(form.dataset.needPrice);
        const content = { tender: panel.dataset.reference, company, prices,
                          technical_offer: form.querySelector("textarea[data-offer]").value,
                          documents: await documents(form.querySelector("input[data-documents]")) };
        const envelope = await seal({
          tender: panel.dataset.reference, company, content, key,
          committee: panel.dataset.committee.split(" "),
          threshold: Number(panel.dataset.threshold) });
        const post = panel.querySelector("form.envelope-form");
        post.elements.envelope.value = envelope;
        post.submit();
      } catch (error) {
        status(box, `${form.dataset.failed} ${error.message || error}`);
      }
    });
  }

  // The sealing itself, for scripts and benchmarks that drive the page (bench/bench_sealing.py).
  window.sahabSeal = Object.freeze({ seal });

  document.addEventListener("DOMContentLoaded", () => {
    for (const panel of document.querySelectorAll("[data-sealing]")) {
      setUp(panel).catch((error) => status(panel.querySelector(".seal-status"), String(error)));
    }
  });
})();
