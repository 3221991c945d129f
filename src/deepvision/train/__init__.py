"""Training recipes on existing engines (verl, TRL) and tiny offline models for tests.
(The GSPO recipes are issue #6; `tiny` builds the offline test model they and `llm` use.)"""
