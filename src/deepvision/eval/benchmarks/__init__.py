"""One module per benchmark; `deepvision.eval.registry` lists them."""
