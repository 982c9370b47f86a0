"""The training playground behind ``neurocloud playground``: sessions that train a network
live in the server process, with views streamed to the browser page (``neurocloud/web``).

>>> from neurocloud.playground.settings import ARTICLE
>>> ARTICLE.data, ARTICLE.layers, ARTICLE.activations
('seed', (2, 2), ('sigmoid', 'sigmoid'))
"""
