# tinyscribe Lambda image: one image for both functions (HTTP API and S3 events).
# Build the model layer first (`make layer` writes layers/build/opt), then `sam build`.

# The dependencies, exactly as uv.lock has them and hash-checked, installed by pip in a stage
# of their own so that uv never reaches the image. UV_VERSION is the Makefile's.
FROM public.ecr.aws/lambda/python:3.12 AS dependencies
ARG UV_VERSION=0.13.9
COPY pyproject.toml uv.lock /tmp/build/
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}" \
    && uv export --project /tmp/build --frozen --no-dev --no-emit-project --hashes --quiet \
        --output-file /tmp/build/requirements.txt \
    && pip install --no-cache-dir --disable-pip-version-check --require-hashes \
        --only-binary=:all: --target /tmp/dependencies -r /tmp/build/requirements.txt

FROM public.ecr.aws/lambda/python:3.12

# Lambda's filesystem is read-only except /tmp; nothing may reach a model hub at run time.
ENV HOME=/tmp \
    HF_HUB_OFFLINE=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TINYSCRIBE_MODEL_DIR=/opt/models/whisper-tiny-en

# (a) The model layer. Container-image functions cannot attach Lambda layers; the documented
# way is to copy the layer content into /opt. It changes least often, so its image layer
# comes first and stays cached across dependency and code changes.
COPY layers/build/opt/ /opt/

# (b) The locked dependencies ([project].dependencies, no dev group, no serve extra), before
# the code so that editing handler/ does not reinstall them. Wheels only: the lock has
# manylinux wheels for x86_64 and arm64 on Python 3.12 (tests/test_dependencies.py).
COPY --from=dependencies /tmp/dependencies/ ${LAMBDA_TASK_ROOT}/

# (c) The code, byte-compiled now because the runtime cannot write __pycache__.
COPY handler/ ${LAMBDA_TASK_ROOT}/handler/
RUN python -m compileall -q "${LAMBDA_TASK_ROOT}/handler"

CMD ["handler.app.lambda_handler"]
