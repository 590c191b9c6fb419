"""The image builder: Dockerfile front end, build context, cache and solver."""
