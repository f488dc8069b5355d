"""Python SDK for the maas suite: ``Client`` (blocking) and ``AsyncClient`` (asyncio), and the ``maas`` command.

    from maas_client import Client
    with Client("127.0.0.1:50051") as maas:
        print(maas.nlp.analyze_sentiment("I love this record!").results[0])
        for event in maas.textgen.generate_stream("Once upon a time", max_new_tokens=40):
            print(event.text, end="")

One attribute per service (``maas_client.services``): ``nlp``, ``textgen``, ``music``, ``recommender``,
``inference`` (KServe v2). ``maas_client.studio`` is ``maas studio``: a sentence in, a song folder out.
"""

from maas_client.client import DEFAULT_TARGET, AsyncClient, Client, new_request_id
from maas_client.errors import FieldViolation, MaasError
from maas_client.retry import NO_RETRY, RetryPolicy

__all__ = ["AsyncClient", "Client", "DEFAULT_TARGET", "FieldViolation", "MaasError", "NO_RETRY", "RetryPolicy",
           "new_request_id"]
