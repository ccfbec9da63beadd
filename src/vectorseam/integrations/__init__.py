"""Framework integrations: vectorseam as a LangChain vector store, a LlamaIndex vector store and a
Haystack document store, each over the :class:`~vectorseam.client.VectorSeam` facade (so over whichever
store the vectorseam configuration selects).

Each lives in its own module, which imports its framework at the top: import
``vectorseam.integrations.langchain`` (extra ``vectorseam[langchain]``), ``.llamaindex``
(``vectorseam[llamaindex]``) or ``.haystack`` (``vectorseam[haystack]``). This package imports none of them.
"""
