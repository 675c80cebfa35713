from segledger.cli import main

main()
