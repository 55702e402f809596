// The browser side of web_transfers::browser_formats_match_the_vectors_and_the_rust_code.
// The test inlines this file into one expression, `(async () => { <this file>; return
// await run(INPUT); })()`, evaluated on a sealbox page so the modules load from the server
// exactly as the pages load them. Any mismatch throws; the result (what the browser wrote,
// for the Rust side to open) is a JSON string.

async function run(input) {
  const sbx1 = await import("/assets/js/sbx1.js");
  const e2e = await import("/assets/js/transfer-e2e.js");
  const links = await import("/assets/js/transfer-link.js");
  const bytes = await import("/assets/js/bytes.js");
  const { hexDecode, base64Decode, base64Encode, uuidBytes, uuidText } = bytes;

  const check = (ok, what) => {
    if (!ok) throw new Error(`browser check failed: ${what}`);
  };
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const pattern = (n) => Uint8Array.from({ length: n }, (_, i) => i % 251);
  const plaintextOf = (p) => (p.utf8 !== undefined ? new TextEncoder().encode(p.utf8) : pattern(p.length));
  // Feeds `data` to a stream in chunks of `size` bytes, so segment boundaries fall inside chunks.
  const chunked = (data, size) =>
    new ReadableStream({
      start(controller) {
        for (let at = 0; at < data.length; at += size) controller.enqueue(data.slice(at, at + size));
        if (data.length === 0) controller.enqueue(new Uint8Array(0));
        controller.close();
      },
    });
  const drain = async (stream) => {
    const parts = [];
    for await (const part of stream) parts.push(...part);
    return Uint8Array.from(parts);
  };
  // The error kind a decryption of `data` announced as `announced` bytes fails with, or null.
  const failure = async (dek, fileId, data, announced = data.length) => {
    try {
      await drain(chunked(data, 1000).pipeThrough(sbx1.decryptStream(dek, fileId, announced)));
      return null;
    } catch (error) {
      check(error instanceof sbx1.Sbx1Error, `an Sbx1Error, not ${error}`);
      return error.kind;
    }
  };

  // 1. Every committed SBX1 vector: same bytes out, opens, and every tampering is refused.
  const vectors = input.sbx1;
  const dek = hexDecode(vectors.dek);
  for (const v of vectors.files) {
    const fileId = uuidBytes(v.file_id);
    const header = new sbx1.Header(v.segment_exponent, hexDecode(v.salt), hexDecode(v.nonce_prefix));
    check(same(header.bytes, hexDecode(v.header)), `${v.name}: header`);
    check(same(sbx1.keyInfo(fileId), hexDecode(v.key_info)), `${v.name}: key info`);
    const plaintext = plaintextOf(v.plaintext);
    const ciphertext = hexDecode(v.ciphertext);
    check(plaintext.length === v.plaintext_len, `${v.name}: plaintext length`);
    check(sbx1.ciphertextLength(plaintext.length, v.segment_exponent) === ciphertext.length, `${v.name}: length`);
    const layout = sbx1.layoutFromCiphertextLength(header, ciphertext.length);
    check(layout.segments === v.segments.length && layout.plaintextLen === plaintext.length, `${v.name}: layout`);
    for (const segment of v.segments) {
      check(same(sbx1.segmentNonce(header, segment.index, segment.last), hexDecode(segment.nonce)), `${v.name}: nonce ${segment.index}`);
      check(header.segmentOffset(segment.index) === segment.offset, `${v.name}: offset ${segment.index}`);
    }
    for (const size of [1, 7, 4096, 5000, 1 << 20]) {
      const sealed = await drain(chunked(plaintext, size).pipeThrough(sbx1.encryptStream(dek, fileId, { header })));
      check(same(sealed, ciphertext), `${v.name}: encrypts to the vector in chunks of ${size}`);
      const opened = await drain(chunked(ciphertext, size).pipeThrough(sbx1.decryptStream(dek, fileId, ciphertext.length)));
      check(same(opened, plaintext), `${v.name}: decrypts in chunks of ${size}`);
    }
    for (const segment of v.segments) {
      const flipped = ciphertext.slice();
      flipped[segment.offset + Math.floor(segment.sealed_len / 2)] ^= 1;
      check((await failure(dek, fileId, flipped)) === "unauthentic", `${v.name}: flipped byte in segment ${segment.index}`);
    }
    const otherId = uuidBytes("0192f0a0-0000-7000-8000-00000000ffff");
    check((await failure(dek, otherId, ciphertext)) === "unauthentic", `${v.name}: another file id`);
    check((await failure(new Uint8Array(32), fileId, ciphertext)) === "unauthentic", `${v.name}: another DEK`);
    const badMagic = ciphertext.slice();
    badMagic[0] ^= 1;
    check((await failure(dek, fileId, badMagic)) === "header", `${v.name}: magic`);
    const appended = new Uint8Array([...ciphertext, 0]);
    check((await failure(dek, fileId, appended)) !== null, `${v.name}: a byte appended`);
    // The server announces the full length but the bytes stop early.
    check((await failure(dek, fileId, ciphertext.slice(0, -1), ciphertext.length)) === "truncated", `${v.name}: cut short`);
    // More bytes than announced.
    check((await failure(dek, fileId, appended, ciphertext.length)) === "trailing-data", `${v.name}: more than announced`);
    if (v.segments.length > 1) {
      const cut = ciphertext.slice(0, v.segments[1].offset);
      check((await failure(dek, fileId, cut)) === "unauthentic", `${v.name}: cut at a segment boundary`);
      const [a, b] = [v.segments[0], v.segments[1]];
      if (a.sealed_len === b.sealed_len) {
        const swapped = ciphertext.slice();
        swapped.set(ciphertext.subarray(b.offset, b.offset + b.sealed_len), a.offset);
        swapped.set(ciphertext.subarray(a.offset, a.offset + a.sealed_len), b.offset);
        check((await failure(dek, fileId, swapped)) === "unauthentic", `${v.name}: segments swapped`);
      }
    }
  }

  // 2. A file the Rust code encrypted opens; resuming re-creates exactly its tail.
  const rust = input.rustFile;
  const rustKey = base64Decode(rust.dek);
  const rustId = uuidBytes(rust.fileId);
  const rustCipher = base64Decode(rust.ciphertext);
  const rustPlain = base64Decode(rust.plaintext);
  const opened = await drain(chunked(rustCipher, 65536 + 3).pipeThrough(sbx1.decryptStream(rustKey, rustId, rustCipher.length)));
  check(same(opened, rustPlain), "the Rust-encrypted file decrypts");
  const rustHeader = sbx1.Header.parse(rustCipher);
  const from = 2;
  const resumed = await drain(
    chunked(rustPlain.subarray(rustHeader.plaintextOffset(from)), 10000).pipeThrough(
      sbx1.encryptStream(rustKey, rustId, { header: rustHeader, startSegment: from }),
    ),
  );
  check(same(resumed, rustCipher.subarray(rustHeader.segmentOffset(from))), "resuming from segment 2 re-creates the same bytes");

  // 3. A file the browser encrypts, with a fresh header, for the Rust side to open.
  const browserKey = e2e.generateKey();
  const browserId = e2e.newFileId();
  check(uuidText(browserId)[14] === "4" && "89ab".includes(uuidText(browserId)[19]), "client file ids are UUID v4");
  const browserPlain = new TextEncoder().encode(input.browserPlaintext);
  const browserCipher = await drain(chunked(browserPlain, 999).pipeThrough(sbx1.encryptStream(browserKey, browserId)));
  check(browserCipher[6] === sbx1.DEFAULT_SEGMENT_EXPONENT, "the browser writes 64 KiB segments");

  // 4. Names: the Rust-sealed name opens; a browser-sealed one goes back.
  const name = input.rustName;
  const nameKey = e2e.decodeKey(name.key);
  const openedName = await e2e.openName(nameKey, name.transferId, name.sealed);
  check(openedName.name === name.name && uuidText(openedName.fileId) === name.fileId, "the Rust-sealed name opens");
  for (const [key, transfer, what] of [
    [e2e.generateKey(), name.transferId, "another key"],
    [nameKey, "0190aaaa-0000-7000-8000-000000000001", "another transfer"],
  ]) {
    let kind = null;
    try {
      await e2e.openName(key, transfer, name.sealed);
    } catch (error) {
      kind = error.kind;
    }
    check(kind === "unauthentic", `a name under ${what} is refused`);
  }
  const browserName = await e2e.sealName(nameKey, name.transferId, browserId, input.browserName);
  check(!/[=+/]/.test(browserName), "names are base64url without padding");

  // 5. Links: today's (#k=), the decided ones (#s=, #s=&k=), and broken ones.
  const id = name.transferId;
  const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I";
  const origin = location.origin;
  let link = links.parseLink(`${origin}/t/${id}#k=${name.key}`);
  check(link.transferId === id && same(link.key, nameKey) && link.secret === null && link.server === `${origin}/`, "a #k= link");
  link = links.parseLink(`${origin}/box/t/${id}#s=${secret}&k=${name.key}`);
  check(link.secret === secret && same(link.key, nameKey) && link.server === `${origin}/box/`, "an #s=&k= link");
  link = links.parseLink(`${origin}/t/${id}#s=${secret}`);
  check(link.secret === secret && link.key === null && !link.keyGiven, "an #s= link");
  check(links.linkWithKey(`${origin}/t/${id}#s=${secret}`, name.key) === `${origin}/t/${id}#s=${secret}&k=${name.key}`, "the key goes after s=");
  check(links.linkWithKey(`${origin}/t/${id}`, name.key) === `${origin}/t/${id}#k=${name.key}`, "a link without a secret");
  for (const bad of [`${origin}/t/${id}#k=${name.key.slice(1)}`, `${origin}/t/${id}#k=`, `${origin}/t/not-a-uuid`, `${origin}/x/${id}`]) {
    let refused = false;
    try {
      links.parseLink(bad);
    } catch (error) {
      refused = error instanceof links.LinkError && !error.message.includes(name.key.slice(1, 20));
    }
    check(refused, `the link ${bad.replace(name.key.slice(1), "KEY")} is refused without echoing its key`);
  }

  return JSON.stringify({
    browserFile: { key: base64Encode(browserKey), fileId: uuidText(browserId), ciphertext: base64Encode(browserCipher) },
    browserName,
  });
}
