"""The registry server: `dockyard registry serve` speaks the OCI distribution spec (Docker Hub's role).

Modules: `names` (validation and the distribution error codes), `storage` (blobs, uploads and
per-repository links on the filesystem), `manifests` (manifests, tags, referrers, catalog),
`gc` (mark-and-sweep safe while serving), `auth` (htpasswd), `httpd` (threaded HTTP/1.1),
`routes` (one handler per endpoint), `server` (config, TLS, start/stop), `main` (the CLI).
"""
