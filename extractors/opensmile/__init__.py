"""openSMILE functionals (eGeMAPSv02, ComParE_2016) through the `opensmile` package."""
