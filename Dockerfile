# tinyscribe Lambda image: one image for both functions (HTTP API and S3 events).
# Build the model layer first (`make layer` writes layers/build/opt), then `sam build`.
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

# (b) Dependencies, read from [project].dependencies in pyproject.toml, so that editing
# handler/ does not reinstall them. Wheels only: everything ships manylinux wheels for
# x86_64 and arm64 on Python 3.12.
COPY pyproject.toml /tmp/build/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/build/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/build/requirements.txt \
    && pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
        --target "${LAMBDA_TASK_ROOT}" -r /tmp/build/requirements.txt \
    && rm -rf /tmp/build

# (c) The code, byte-compiled now because the runtime cannot write __pycache__.
COPY handler/ ${LAMBDA_TASK_ROOT}/handler/
RUN python -m compileall -q "${LAMBDA_TASK_ROOT}/handler"

CMD ["handler.app.lambda_handler"]
