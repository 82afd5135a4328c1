"""Files on any Hadoop path (hdfs://, s3a://, file://) through the Spark session's Hadoop FileSystem (py4j).

A plain path (no scheme) is local and is handled by `c360.io`; these functions take URIs. Writes are atomic as
the local ones are: written beside the target under a hidden name, then renamed into place (on HDFS and the local
file system a rename is atomic; on S3 a rename is a copy, so readers may briefly see neither version).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

from c360.errors import InputError

# a scheme of two letters or more (a Windows drive letter is one), then ":/" (Hadoop also writes file:/x)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def is_uri(path: str | os.PathLike) -> bool:
    """Whether `path` is a URI (hdfs://nn/x, s3a://bucket/x, file:///x), not a plain local path."""
    return bool(_URI.match(str(path)))


def is_local_uri(path: str | os.PathLike) -> bool:
    """Whether `path` is a file: URI (this machine's file system)."""
    return is_uri(path) and str(path).lower().startswith("file:")


def local_path(path: str | os.PathLike) -> Path | None:
    """The local path of a plain path or a file: URI; None for any other URI (hdfs://, s3a://)."""
    if not is_uri(path):
        return Path(path)
    if not is_local_uri(path):
        return None
    return Path(unquote(urlparse(str(path)).path))


def beside(uri: str, suffix: str) -> str:
    """The URI of a file next to `uri` whose name is its name + `suffix` (`x.parquet` -> `x.parquet.report.json`)."""
    return uri.rstrip("/") + suffix


def _fs(spark, uri: str):
    """(the Hadoop FileSystem of `uri`, its Hadoop Path)."""
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path


def _sibling(spark, uri: str, tag: str) -> str:
    """A hidden name next to `uri` (Spark and Hadoop skip names starting with '.' or '_' when listing parts)."""
    _, path = _fs(spark, uri)
    if path.getParent() is None:
        raise InputError(f"{uri}: the root of a file system is not a file's path")
    return path.getParent().toString().rstrip("/") + f"/.{path.getName()}.{tag}-{uuid.uuid4().hex[:12]}"


def exists(spark, uri: str) -> bool:
    """Whether a file or directory is at `uri`."""
    fs, path = _fs(spark, uri)
    return bool(fs.exists(path))


def is_file(spark, uri: str) -> bool:
    """Whether a file (not a directory) is at `uri`."""
    fs, path = _fs(spark, uri)
    return bool(fs.exists(path)) and bool(fs.getFileStatus(path).isFile())


def delete(spark, uri: str) -> bool:
    """Remove the file or directory (recursively) at `uri`; False when nothing was there."""
    fs, path = _fs(spark, uri)
    return bool(fs.delete(path, True))


def rename(spark, src: str, dst: str) -> None:
    """Move `src` to `dst`, replacing what is there: the old one is first moved aside (kept if the move fails),
    then removed. Hadoop's rename onto an existing directory would move `src` inside it instead."""
    fs, s = _fs(spark, src)
    _, d = _fs(spark, dst)
    parent = d.getParent()
    if parent is not None and not fs.exists(parent):
        fs.mkdirs(parent)
    old = None
    if fs.exists(d):
        old = _fs(spark, _sibling(spark, dst, "old"))[1]
        if not fs.rename(d, old):
            raise OSError(f"{dst}: cannot move the previous version aside")
    if not fs.rename(s, d):
        if old is not None:
            fs.rename(old, d)
        raise OSError(f"{dst}: cannot rename {src} into place")
    if old is not None:
        fs.delete(old, True)


def write_text(spark, uri: str, text: str) -> str:
    """Write `text` (UTF-8) at `uri`, atomically: a hidden file beside it, renamed into place."""
    tmp = _sibling(spark, uri, "tmp")
    fs, path = _fs(spark, tmp)
    try:
        stream = fs.create(path, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        rename(spark, tmp, uri)
    finally:
        if fs.exists(path):
            fs.delete(path, True)
    return uri


def read_text(spark, uri: str) -> str:
    """The text (UTF-8) of the file at `uri`; InputError naming it when it is missing."""
    if not is_file(spark, uri):
        raise InputError(f"{uri}: not found")
    fs, path = _fs(spark, uri)
    stream = fs.open(path)
    try:
        return str(spark._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def spark_write(df, uri: str, fmt: str = "parquet", **options) -> str:
    """Write a Spark DataFrame as a directory of part files at `uri`, atomically: Spark writes a hidden directory
    beside it, renamed into place through Hadoop's FileSystem (readers see the old output or the whole new one)."""
    spark = df.sparkSession
    tmp = _sibling(spark, uri, "tmp")
    try:
        df.write.mode("overwrite").options(**options).format(fmt).save(tmp)
        rename(spark, tmp, uri)
    finally:
        if exists(spark, tmp):
            delete(spark, tmp)
    return uri
