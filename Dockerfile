# esl-build in a container: the CLI, the HTTP service and the queue worker, one image.
#   docker build -t esl-build .
#   docker run --rm -v "$PWD:/lessons" esl-build build -n 4 -P thread   # build a lessons repo
#   docker run --rm -p 8080:8080 esl-build serve --host 0.0.0.0 --port 8080   # HTTP service
#   docker run --rm -e ESL_BUILD_QUEUE_URL=redis://… esl-build worker --concurrency 2
#   docker run --rm -i --network host -e ESL_BUILD_QUEUE_URL=redis://127.0.0.1:6379/0 \
#     --entrypoint sh -w /tmp esl-build -s < .ci/smoke             # the smoke test CI runs
# Two stages: the wheel is built in the first, installed alone in the second (no sources, no
# build tools in the image), and the image runs as a non-root user. PYTHON_IMAGE may name
# another Python image with python and pip on PATH (e.g. python:3.13-slim).
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY esl_build ./esl_build
RUN python -m pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM ${PYTHON_IMAGE}
# The extras installed with the wheel (tests/integration/test_wheel.py installs the same).
ARG EXTRAS=service,queue
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=wheel /dist/*.whl /tmp/
RUN python -m pip install --no-cache-dir "$(ls /tmp/*.whl)[${EXTRAS}]" && rm /tmp/*.whl \
    && useradd --create-home --uid 10001 esl
USER esl
WORKDIR /lessons
ENTRYPOINT ["esl-build"]
CMD ["--help"]
