"""`python -m serve`: run the service with settings from the environment (SERVE_*)."""

from serve.server import run

if __name__ == "__main__":
    run()
