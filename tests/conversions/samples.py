"""Sample files for the conversion tests, and the independent checks of their results.

make KIND OUT [ARGS]   writes a sample; check KIND FILE [ARGS] reads a result and prints
what it found as JSON. Pillow reads and writes images; csv, json and html.parser are
Python's own.
"""
import csv
import io
import json
import struct
import sys
import zlib
from html.parser import HTMLParser


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def bomb(path, side):
    """A grayscale PNG declaring side x side pixels, all zero: a few hundred KB on disk."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    parts = []
    for _ in range(side):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)))
        f.write(png_chunk(b"IDAT", b"".join(parts)))
        f.write(png_chunk(b"IEND", b""))


def make(kind, out, args):
    from PIL import Image, PngImagePlugin

    if kind == "image":
        # A left half red, right half blue picture, with metadata to be stripped.
        fmt, width, height = args[0], int(args[1]), int(args[2])
        image = Image.new("RGB", (width, height), (220, 20, 20))
        image.paste((20, 20, 220), (width // 2, 0, width, height))
        if fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_text("Comment", "secret-metadata")
            image.save(out, "PNG", pnginfo=info)
        elif fmt == "JPEG":
            exif = Image.Exif()
            exif[0x010F] = "SecretCamera"  # Make
            image.save(out, "JPEG", quality=95, exif=exif.tobytes())
        else:
            image.save(out, fmt)
    elif kind == "bomb":
        bomb(out, int(args[0]))
    elif kind == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = "People"
        sheet.append(["name", "age"])
        sheet.append(["Ada", 36])
        sheet.append(["Grace", 85])
        other = book.create_sheet("Other")
        other.append(["x"])
        book.save(out)
    else:
        raise SystemExit(f"unknown sample {kind}")


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.attrs = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(name for name, _ in attrs)

    def handle_data(self, data):
        self.text.append(data)


def check(kind, path):
    data = open(path, "rb").read()
    if kind == "image":
        from PIL import Image

        image = Image.open(io.BytesIO(data))
        image.load()
        rgb = image.convert("RGB")
        w, h = image.size
        found = {
            "format": image.format,
            "width": w,
            "height": h,
            "left": list(rgb.getpixel((w // 4, h // 2))),
            "right": list(rgb.getpixel((3 * w // 4, h // 2))),
            "exif": bool(image.getexif()),
            # The samples' metadata: a PNG text chunk and a JPEG EXIF Make tag.
            "leaked": b"secret-metadata" in data or b"SecretCamera" in data
            or "Comment" in image.info,
        }
    elif kind == "csv":
        found = {"rows": list(csv.reader(io.StringIO(data.decode("utf-8"))))}
    elif kind == "json":
        found = {"value": json.loads(data.decode("utf-8"))}
    elif kind == "jsonl":
        found = {"rows": [json.loads(line) for line in data.decode("utf-8").splitlines() if line]}
    elif kind == "html":
        parser = Tags()
        parser.feed(data.decode("utf-8"))
        found = {"tags": parser.tags, "attrs": parser.attrs, "text": "".join(parser.text)}
    elif kind == "text":
        found = {"text": data.decode("utf-8"), "bom": data.startswith(b"\xef\xbb\xbf")}
    else:
        raise SystemExit(f"unknown check {kind}")
    print(json.dumps(found))


if __name__ == "__main__":
    action, kind, target, *rest = sys.argv[1:]
    if action == "make":
        make(kind, target, rest)
    else:
        check(kind, target)
