/**
 * Extraction of the two archive kinds the official datasets ship as: zip (stored or deflated
 * members, CRC-32 checked, streamed) and tar.gz (ustar / GNU long names, streamed), and the saving
 * of plain downloads (a file as it is, or a single gunzipped `.gz`). Only regular files are
 * written; a member path (or saveAs) that is absolute or climbs out with ".." is refused.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, rename } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32, createGunzip, createInflateRaw } from "node:zlib";
import type { ArchiveFormat, ArchiveSource, PlainSource } from "./datasets.js";
import { DataError } from "./errors.js";

/** Maps a member path to its path under the destination, or null to skip it. */
export type MemberMap = (member: string) => string | null;

/** Keeps members under `prefix` (prefix removed); drops macOS resource forks. */
export function stripPrefixMap(prefix: string): MemberMap {
  return (member) => {
    if (member.startsWith("__MACOSX/") || posix.basename(member).startsWith("._")) return null;
    if (!member.startsWith(prefix)) return null;
    const rest = member.slice(prefix.length);
    return rest === "" || rest.endsWith("/") ? null : rest;
  };
}

export async function extractArchive(archive: string, format: ArchiveFormat, dest: string, map: MemberMap): Promise<string[]> {
  return format === "zip" ? extractZip(archive, dest, map) : extractTarGz(archive, dest, map);
}

/** Puts one downloaded source into dest: an archive's members, or a plain file as its saveAs. Returns the paths written. */
export async function unpack(download: string, a: ArchiveSource, dest: string): Promise<string[]> {
  if ("saveAs" in a) {
    await savePlain(download, a, dest);
    return [a.saveAs];
  }
  return extractArchive(download, a.format, dest, stripPrefixMap(a.stripPrefix));
}

/** A plain download moved to dest/saveAs (the temp folder and dest share a file system), or gunzipped there. */
async function savePlain(download: string, a: PlainSource, dest: string): Promise<void> {
  const out = safeJoin(a.url, dest, a.saveAs);
  await mkdir(dirname(out), { recursive: true });
  if (a.format === "file") return rename(download, out);
  try {
    await pipeline(createReadStream(download), createGunzip(), createWriteStream(out));
  } catch (e) {
    throw new DataError(`${a.url}: not a complete gzip file (${(e as Error).message}); the download may be damaged`);
  }
}

function safeJoin(archive: string, dest: string, member: string): string {
  const norm = posix.normalize(member.replace(/\\/g, "/"));
  if (norm.startsWith("/") || norm === ".." || norm.startsWith("../") || /^[a-zA-Z]:/.test(norm)) {
    throw new DataError(`${archive}: member ${JSON.stringify(member)} would be written outside the target folder; refusing the archive`);
  }
  return join(dest, norm);
}

// ---------------------------------------------------------------------------------------------
// zip

interface ZipEntry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

const EOCD_SIG = 0x06054b50;
const CDIR_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;

export async function extractZip(archive: string, dest: string, map: MemberMap): Promise<string[]> {
  const fh = await open(archive, "r");
  const written: string[] = [];
  try {
    const { size } = await fh.stat();
    const tailLen = Math.min(size, 65_557);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD_SIG) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new DataError(`${archive}: not a zip file (no end-of-central-directory record); the download may be truncated`);
    const count = tail.readUInt16LE(eocd + 10);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    if (cdOffset === 0xffffffff || count === 0xffff) throw new DataError(`${archive}: ZIP64 archives are not supported`);
    if (cdOffset + cdSize > size) throw new DataError(`${archive}: central directory lies past the end of the file; the download is truncated`);
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset);
    const entries: ZipEntry[] = [];
    for (let p = 0, k = 0; k < count; k++) {
      if (cd.readUInt32LE(p) !== CDIR_SIG) throw new DataError(`${archive}: damaged central directory (entry ${k})`);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      entries.push({
        method: cd.readUInt16LE(p + 10),
        crc: cd.readUInt32LE(p + 16),
        compressedSize: cd.readUInt32LE(p + 20),
        size: cd.readUInt32LE(p + 24),
        localOffset: cd.readUInt32LE(p + 42),
        name: cd.toString("utf8", p + 46, p + 46 + nameLen),
      });
      p += 46 + nameLen + extraLen + commentLen;
    }
    for (const e of entries) {
      const rel = map(e.name);
      if (rel === null) continue;
      const out = safeJoin(archive, dest, rel);
      const local = Buffer.alloc(30);
      await fh.read(local, 0, 30, e.localOffset);
      if (local.readUInt32LE(0) !== LOCAL_SIG) throw new DataError(`${archive}: damaged local header for ${e.name}`);
      const start = e.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      if (e.method !== 0 && e.method !== 8)
        throw new DataError(`${archive}: ${e.name} uses compression method ${e.method} (only stored and deflate are supported)`);
      await mkdir(dirname(out), { recursive: true });
      let crc = 0;
      let bytes = 0;
      const check = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          crc = crc32(chunk, crc);
          bytes += chunk.length;
          cb(null, chunk);
        },
      });
      const src = e.compressedSize === 0 ? [] : createReadStream(archive, { start, end: start + e.compressedSize - 1 });
      if (e.method === 8) await pipeline(src, createInflateRaw(), check, createWriteStream(out));
      else await pipeline(src, check, createWriteStream(out));
      if (bytes !== e.size || crc >>> 0 !== e.crc) throw new DataError(`${archive}: ${e.name} fails its CRC-32 / size check; the archive is damaged`);
      written.push(rel);
    }
  } finally {
    await fh.close();
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// tar.gz

export async function extractTarGz(archive: string, dest: string, map: MemberMap): Promise<string[]> {
  const written: string[] = [];
  let buf: Buffer = Buffer.alloc(0);
  let longName: string | null = null;
  /** The member being written: bytes still to come, and padding after it. */
  let current: { fh: Awaited<ReturnType<typeof open>> | null; left: number; pad: number } | null = null;
  let ended = false;
  const gunzip = createReadStream(archive).pipe(createGunzip());
  try {
    for await (const chunk of gunzip) {
      buf = buf.length === 0 ? (chunk as Buffer) : Buffer.concat([buf, chunk as Buffer]);
      for (;;) {
        if (ended) break;
        if (current !== null) {
          if (current.left > 0) {
            if (buf.length === 0) break;
            const take = Math.min(current.left, buf.length);
            if (current.fh) await current.fh.write(buf.subarray(0, take));
            buf = buf.subarray(take);
            current.left -= take;
            if (current.left > 0) break;
          }
          if (buf.length < current.pad) break;
          buf = buf.subarray(current.pad);
          if (current.fh) await current.fh.close();
          current = null;
        }
        if (buf.length < 512) break;
        const header = buf.subarray(0, 512);
        buf = buf.subarray(512);
        if (header.every((b) => b === 0)) {
          ended = true;
          break;
        }
        const size = parseOctal(header.subarray(124, 136));
        const type = String.fromCharCode(header[156] || 48);
        const prefix = header.subarray(257, 263).toString("latin1").startsWith("ustar") ? cString(header.subarray(345, 500)) : "";
        const name = longName ?? (prefix ? `${prefix}/${cString(header.subarray(0, 100))}` : cString(header.subarray(0, 100)));
        longName = null;
        const pad = (512 - (size % 512)) % 512;
        if (type === "L" || type === "x") {
          // GNU long name, or a pax header: both carry the next member's real name.
          if (buf.length < size + pad) {
            buf = Buffer.concat([header, buf]);
            break;
          }
          const body = buf.subarray(0, size);
          longName = type === "L" ? cString(body) : (paxPath(body) ?? null);
          buf = buf.subarray(size + pad);
          continue;
        }
        const rel = type === "0" || type === "7" ? map(name) : null;
        let fh: Awaited<ReturnType<typeof open>> | null = null;
        if (rel !== null) {
          const out = safeJoin(archive, dest, rel);
          await mkdir(dirname(out), { recursive: true });
          fh = await open(out, "w");
          written.push(rel);
        }
        current = { fh, left: size, pad };
      }
    }
  } catch (e) {
    if (current?.fh) await current.fh.close();
    if (e instanceof DataError) throw e;
    throw new DataError(`${archive}: cannot read the tar.gz archive (${(e as Error).message}); the download may be damaged`);
  }
  if (current !== null) {
    if (current.fh) await current.fh.close();
    if (current.left > 0) throw new DataError(`${archive}: the tar archive ends in the middle of a member; the download is truncated`);
  }
  return written;
}

/** The `path` record of a pax extended header ("LEN path=VALUE\n" records). */
function paxPath(body: Buffer): string | undefined {
  const text = body.toString("utf8");
  for (let at = 0; at < text.length; ) {
    const space = text.indexOf(" ", at);
    const len = parseInt(text.slice(at, space), 10);
    if (!(len > 0)) return undefined;
    const rec = text.slice(space + 1, at + len - 1);
    if (rec.startsWith("path=")) return rec.slice(5);
    at += len;
  }
  return undefined;
}

function parseOctal(b: Buffer): number {
  const s = cString(b).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.toString("utf8", 0, nul < 0 ? b.length : nul);
}
