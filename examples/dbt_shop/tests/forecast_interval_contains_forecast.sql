-- Every forecast lies inside its interval, and demand forecasts are never negative.
select * from {{ ref('demand_forecast') }}
where not (lower <= forecast and forecast <= upper) or forecast < 0
