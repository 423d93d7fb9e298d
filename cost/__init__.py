"""What a stage costs before you deploy it: `python -m cost --help`.

Reads the synthesized serving template and the dated, hand-kept price table in cost/prices.json;
makes no AWS calls and fetches no prices.
"""
