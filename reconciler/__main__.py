from reconciler.cli import console

console()
