package org.hes.flink;

import java.time.LocalDate;

/** UTC hours, days and calendar months, as hes_model::Period. */
public final class Periods {
    public static final int HOUR = 1;
    public static final int DAY = 2;
    public static final int MONTH = 3;

    private Periods() {}

    public static long start(int period, long t) {
        switch (period) {
            case HOUR:
                return t - Math.floorMod(t, 3600L);
            case DAY:
                return t - Math.floorMod(t, 86_400L);
            default:
                LocalDate d = LocalDate.ofEpochDay(Math.floorDiv(t, 86_400L));
                return d.withDayOfMonth(1).toEpochDay() * 86_400L;
        }
    }

    public static long end(int period, long start) {
        switch (period) {
            case HOUR:
                return start + 3600;
            case DAY:
                return start + 86_400;
            default:
                LocalDate d = LocalDate.ofEpochDay(Math.floorDiv(start, 86_400L));
                return d.withDayOfMonth(1).plusMonths(1).toEpochDay() * 86_400L;
        }
    }

    public static String name(int period) {
        return period == HOUR ? "hour" : period == DAY ? "day" : "month";
    }
}
