"""The web bridge: the live dashboard, the admin page, REST and a WebSocket, fed from LSL.

FastAPI on uvicorn: FastAPI because it gives the OpenAPI docs (/docs) and the request
validation the REST API needs, on Starlette's WebSocket support for /ws; uvicorn serves both
from one asyncio loop. See docs/DESIGN.md, "Web bridge".
"""
