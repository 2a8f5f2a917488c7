from rl_reason.cli.main import main

raise SystemExit(main())
