"""The online feature store: applicants' feature vectors in Redis, in versioned snapshots.

A snapshot is written whole under its own key prefix (`materialize`), checked (count and sample),
then made current by switching one pointer key; readers take the pointer and the vectors in one
atomic Lua call, so none ever sees a half-written snapshot. The snapshot that was current keeps
its keys for a grace period, so `rollback` can switch back to it. Modules:

- `layout`: key names and the binary vector format (numpy and the standard library only; the
  serve image reads it);
- `redis_adapter`: the only importer of redis-py (sync for the CLI, asyncio for serving);
- `snapshots`: pointer switch, rollback, status, expiry;
- `source`: a features file read in checked chunks (batch scoring's reader), for both verbs below;
- `materialize`: a features file → a checked snapshot, with a rejects file;
- `skew`: served vectors against the rows they came from.
"""
