"""API v2 images (docs/images.md, docs/api-v2.md "Images"): list the image versions, import a
tar as a new version (the body, streamed to a temporary file, checked, stored through the file
calls), delete a version. Each view is judicator calls (khala/rpc/client.py)."""

from __future__ import annotations

from flask import Response, jsonify, request
from pydantic import BaseModel, Field

from khala.config import GatewaySettings
from khala.gateway.v2 import parse
from khala.gateway.v2.bodies import spooled_body
from khala.gateway.v2.errors import ApiError
from khala.images.model import ImageInfo
from khala.images.upload import import_tar
from khala.model import INT_MAX
from khala.rpc.client import JudicatorClient
from khala.taskjson.models import Strict

MAX_NOTE = 1000


class ImageOut(BaseModel):
    name: str
    version: int
    sha256: str = Field(description="sha256 of the image's tar (its identity)")
    size: int = Field(description="bytes of the tar")
    created: str
    note: str = Field(description="how it was made, for people")


class ImageEnvelope(BaseModel):
    data: ImageOut


class ImageList(BaseModel):
    data: list[ImageOut]


class ImportQuery(Strict):
    note: str = Field("", max_length=MAX_NOTE, description="how the image was made")


def image_out(info: ImageInfo) -> dict[str, object]:
    return ImageOut(name=info.name, version=info.version, sha256=info.file.sha256,
                    size=info.file.size, created=info.created, note=info.note).model_dump()


class ImageViews:
    def __init__(self, settings: GatewaySettings, client: JudicatorClient) -> None:
        self.settings = settings
        self.client = client

    def image_list(self) -> Response:
        return jsonify({"data": [image_out(i) for i in self.client.image_list()]})

    def image_import(self, name: str) -> Response:
        """The body, a tar of a root filesystem, as the next version of `name`."""
        query = parse.validate(ImportQuery, request.args.to_dict())
        with spooled_body(self.settings.max_image_size, "max_image_size",
                          " (a tar of a root filesystem)") as fh:
            info = import_tar(self.client, name, fh, self.settings.max_image_size, query.note)
        response = jsonify({"data": image_out(info)})
        response.status_code = 201
        response.headers["Location"] = f"/api/v2/images/{name}/versions/{info.version}"
        return response

    def image_delete(self, name: str, version: int) -> Response:
        if not 1 <= version <= INT_MAX:
            raise ApiError(404, f"no image {name}:{version}")
        self.client.image_delete(name, version)
        return Response(status=204)
