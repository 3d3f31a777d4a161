from benchmarks.generalization.cli import main

main()
