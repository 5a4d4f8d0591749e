"""Operations shared by the bot, the CLI and (later) the dashboard."""
