from itam_tgstats.cli import main

main()
