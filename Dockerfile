FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY . .
# The ClickHouse server client by default; EXTRAS=clickhouse adds chDB (in-process, one worker).
ARG EXTRAS=clickhouse-http
RUN pip install --no-cache-dir ".[${EXTRAS}]" && python manage.py collectstatic --no-input
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --no-input && python manage.py migrate_clickhouse --if-configured && gunicorn insights_api.wsgi:application --bind 0.0.0.0:${PORT:-8000} --workers ${WEB_CONCURRENCY:-4} --threads 4"]
