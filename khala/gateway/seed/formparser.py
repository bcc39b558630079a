"""Request bodies → form fields, refusing what werkzeug would silently change.

werkzeug decodes multipart text fields with errors="replace" (invalid UTF-8 becomes U+FFFD, so
the stored command differs from the one sent) and keeps invalid percent-escapes of urlencoded
forms as literal text ("%FF"); past `max_form_parts` parts it raises 413, which the API would
answer as result 3 (too large). Here each of those is InvalidInput (result 4) instead.
`StrictRequest` is the app's request class.
"""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from khala.errors import InvalidInput, TooLarge

#: Most parts a multipart form may have (the seed form has 13 fields, the extensions 5 more).
MAX_FORM_PARTS = 1000

ParseResult = tuple[t.IO[bytes], MultiDict[str, t.Any], MultiDict[str, t.Any]]


def decode_field(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"form field {name!r} is not valid UTF-8") from exc


class StrictMultiPartParser(MultiPartParser):  # type: ignore[misc]
    """werkzeug's MultiPartParser.parse with strict UTF-8 fields and its own parts limit."""

    def parse(
        self, stream: t.IO[bytes], boundary: bytes, content_length: int | None
    ) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
        decoder = MultipartDecoder(boundary, max_form_memory_size=self.max_form_memory_size)
        fields: list[tuple[str, str]] = []
        files: list[tuple[str, FileStorage]] = []
        parts = 0
        part: Field | File | None = None
        chunks: list[bytes] = []
        spool: t.IO[bytes] | None = None
        field_size = 0
        while data := stream.read(self.buffer_size):
            decoder.receive_data(data)
            event = decoder.next_event()
            while not isinstance(event, (Epilogue, NeedData)):
                if isinstance(event, (Field, File)):
                    parts += 1
                    if parts > MAX_FORM_PARTS:
                        raise InvalidInput(f"a form has at most {MAX_FORM_PARTS} parts")
                    part, chunks, field_size = event, [], 0
                    spool = None
                    if isinstance(event, File):
                        spool = self.start_file_streaming(event, content_length)
                elif isinstance(event, Data) and part is not None:
                    if spool is not None:
                        spool.write(event.data)
                    else:
                        field_size += len(event.data)
                        if self.max_form_memory_size and field_size > self.max_form_memory_size:
                            raise TooLarge(f"form field {part.name!r} is too large")
                        chunks.append(event.data)
                    if not event.more_data:
                        if spool is None:
                            fields.append((part.name, decode_field(part.name, b"".join(chunks))))
                        else:
                            spool.seek(0)
                            storage = FileStorage(
                                spool, part.filename, part.name, headers=part.headers  # type: ignore[union-attr]
                            )
                            files.append((part.name, storage))
                event = decoder.next_event()
        return self.cls(fields), self.cls(files)


class StrictFormDataParser(FormDataParser):  # type: ignore[misc]
    def _parse_multipart(
        self,
        stream: t.IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str],
    ) -> ParseResult:
        parser = StrictMultiPartParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            cls=self.cls,
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise InvalidInput("multipart form without a boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files

    def _parse_urlencoded(
        self,
        stream: t.IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str],
    ) -> ParseResult:
        try:
            text = stream.read().decode("utf-8")
            items = parse_qsl(text, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError as exc:
            raise InvalidInput("form is not valid UTF-8") from exc
        return stream, self.cls(items), self.cls()


class StrictRequest(Request):
    form_data_parser_class = StrictFormDataParser
