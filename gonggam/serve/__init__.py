"""The chatbot as a service (serve.py): an OpenAI-compatible safety gateway and a web chat.

- app.py: the FastAPI app (`create_app`), errors as OpenAI's error object, the privacy-preserving request log;
- engine.py: each turn in a worker thread bridged to the event loop, and the lock in front of in-process engines;
- schemas.py: the request as OpenAI checks it, and the response bodies;
- cli.py: serve.py's flags, the address and API-key checks, uvicorn;
- static/: the web chat (plain HTML, CSS and JavaScript; nothing is fetched from elsewhere).
"""
