"""The compiled chat schema shipped in this wheel, for reflection and dynamic tools.

``schema.binpb`` is the output of ``buf build --as-file-descriptor-set``: every file
of the module and its imports, with comments, as one ``FileDescriptorSet``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor_pool import DescriptorPool

IMAGE_RESOURCE = "schema.binpb"


def image_bytes() -> bytes:
    """Return the serialized ``FileDescriptorSet`` of the schema, as shipped."""
    return files(__package__).joinpath(IMAGE_RESOURCE).read_bytes()


@cache
def file_descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """Return the schema as a parsed ``FileDescriptorSet`` (treat it as read-only)."""
    return descriptor_pb2.FileDescriptorSet.FromString(image_bytes())


def descriptor_pool() -> DescriptorPool:
    """Return a new pool holding every file of the schema, separate from the default pool.

    A separate pool never clashes with the ``_pb2`` modules, which register the
    same files in protobuf's default pool when they are imported.
    """
    pool = DescriptorPool()
    for file in file_descriptor_set().file:
        pool.Add(file)
    return pool
