"""What several exercises share and no exercise owns: the checks' building blocks (``common``), the float64
layers (``reference``) and the known mistakes of the shared attention and block (``blocks``). Exercises import
the kit; the kit imports no exercise."""
