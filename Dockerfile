# esl-build in a container: the CLI, the HTTP service and the queue worker, one image.
#   docker build -t esl-build .
#   docker run --rm -v "$PWD:/lessons" esl-build build -n 4 -P thread   # build a lessons repo
#   docker run --rm esl-build --help
# Two stages: the wheel is built in the first, installed alone in the second (no sources, no
# build tools in the image), and the image runs as a non-root user.
FROM python:3.12-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY esl_build ./esl_build
RUN python -m pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=wheel /dist/*.whl /tmp/
RUN python -m pip install --no-cache-dir "$(ls /tmp/*.whl)[service,queue]" && rm /tmp/*.whl \
    && useradd --create-home --uid 10001 esl
USER esl
WORKDIR /lessons
ENTRYPOINT ["esl-build"]
CMD ["--help"]
