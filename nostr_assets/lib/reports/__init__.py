"""The network dashboard, without Dagster: marts read into rows (dashboard_data), rows drawn as
Vega-Lite charts (dashboard_charts), charts laid out in one offline HTML page (dashboard_page),
with the country outlines it embeds (country_outlines)."""
